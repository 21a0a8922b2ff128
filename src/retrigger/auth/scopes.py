"""Scopes and the calling principal; which scope implies which."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Scope(StrEnum):
    admin = "admin"  # everything, including teams and keys
    write = "write"  # products, policies, runs (and read)
    ingest = "ingest"  # signals only
    read = "read"  # read everything visible


_IMPLIES: dict[Scope, frozenset[Scope]] = {
    Scope.admin: frozenset(Scope),
    Scope.write: frozenset({Scope.write, Scope.read}),
    Scope.ingest: frozenset({Scope.ingest}),
    Scope.read: frozenset({Scope.read}),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key (or nobody, with auth disabled) and what it may do."""

    key_id: str | None
    team_id: int | None
    scopes: frozenset[Scope] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        return self.key_id or "anonymous"

    @property
    def is_org_wide(self) -> bool:
        """Org-wide keys (no team) see every team's rows."""
        return self.team_id is None

    @property
    def is_org_admin(self) -> bool:
        return self.is_org_wide and Scope.admin in self.scopes

    def has(self, scope: Scope) -> bool:
        return any(scope in _IMPLIES[s] for s in self.scopes)

    def can_see_team(self, team_id: int | None) -> bool:
        return self.is_org_wide or team_id == self.team_id


ANONYMOUS_ADMIN = Principal(key_id=None, team_id=None, scopes=frozenset({Scope.admin}))
SYSTEM = Principal(key_id="system", team_id=None, scopes=frozenset({Scope.admin}))
