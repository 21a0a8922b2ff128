"""API key tokens: ``rtk_<key id>_<secret>``; only a SHA-256 of the secret is ever stored.

The key id (8 lowercase base32 characters) is public: it names the key in lists, logs and the
audit trail. The secret is 32 random bytes (256 bits), so a fast hash is safe: no dictionary or
brute force attack applies to uniformly random secrets, and lookups stay O(1) on the key id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

PREFIX = "rtk_"
_TOKEN_RE = re.compile(r"^rtk_([a-z2-7]{8})_([A-Za-z0-9_-]{32,128})$")


class ParsedToken(NamedTuple):
    key_id: str
    secret: str


def new_key_id() -> str:
    return base64.b32encode(secrets.token_bytes(5)).decode().lower()


def generate_token() -> tuple[str, str]:
    """A fresh ``(key_id, full token)``; the token is shown once and never stored."""
    key_id = new_key_id()
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def parse_token(token: str) -> ParsedToken | None:
    """Split a presented token, or None if it is not one of ours."""
    match = _TOKEN_RE.match(token)
    if match is None:
        return None
    return ParsedToken(match.group(1), match.group(2))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
