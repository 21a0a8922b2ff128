"""Teams: the owners of products; API keys are scoped to one team or to the whole organization."""
