"""Alert rules' label matchers, with Alertmanager semantics (regexes fully anchored)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from retrigger.policies.fields import SpecModel
from retrigger.policies.problems import fail

__all__ = ["AlertOrigin", "AlertStatus", "MatchOp", "Matcher"]


class MatchOp(StrEnum):
    """Alertmanager matcher operators; regexes are fully anchored."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


class Matcher(SpecModel):
    """One label matcher, as in Alertmanager routes and silences."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
    """Label name, e.g. ``alertname``."""
    value: str = Field(max_length=1000)
    """Label value, or a regular expression for ``=~`` and ``!~``."""
    op: MatchOp = MatchOp.EQUAL
    """Comparison operator."""

    @model_validator(mode="after")
    def _regex_compiles(self) -> Self:
        if self.op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            try:
                re.compile(self.value)
            except re.error as exc:
                fail(
                    "Matcher", [(("value",), "invalid_regex", f"invalid regular expression: {exc}")]
                )
        return self


class AlertStatus(StrEnum):
    """Alert states the rule listens to."""

    FIRING = "firing"
    RESOLVED = "resolved"


class AlertOrigin(StrEnum):
    """Webhook the alert arrives through."""

    ANY = "any"
    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
