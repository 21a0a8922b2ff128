"""Authentication and authorization: API keys, scopes, the calling principal."""
