"""Policy documents (``kind``, ``name``, ``spec``): validation and the canonical form.

The canonical form is the JSON a service compares to tell "unchanged" (idempotent apply): every
default filled in, durations and windows in canonical strings, silences in UTC, and collections
whose order carries no meaning (rules, inhibitions, feature lists...) sorted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import Field

from retrigger.policies.fields import Name, SpecModel
from retrigger.policies.problems import validate_as
from retrigger.policies.schemas import (
    PRODUCT_POLICY_ADAPTER,
    ProductPolicy,
    TemplatedPolicySpec,
    TemplateSpec,
)

__all__ = [
    "API_VERSION",
    "DocumentKind",
    "PolicyDocument",
    "canonical",
    "canonical_spec",
    "fingerprint",
    "validate_document",
    "validate_product_policy",
    "validate_template",
]

API_VERSION: Final = "retrigger/v1"


class DocumentKind(StrEnum):
    """What a policy document holds."""

    POLICY_TEMPLATE = "PolicyTemplate"
    PRODUCT_POLICY = "ProductPolicy"


class _Envelope(SpecModel):
    api_version: Literal["retrigger/v1"] = API_VERSION
    kind: DocumentKind
    name: Name
    """Template name, or the product the policy belongs to."""
    spec: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """One validated document; ``source`` says where it was read (``file.yaml#2``)."""

    kind: DocumentKind
    name: str
    spec: TemplateSpec | ProductPolicy
    source: str | None = None

    def to_dict(self, *, canonical: bool = False) -> dict[str, Any]:
        """JSON form: as written (concise), or canonical."""
        spec = canonical_spec(self.spec) if canonical else _written(self.spec)
        return {
            "api_version": API_VERSION,
            "kind": self.kind.value,
            "name": self.name,
            "spec": spec,
        }


def validate_template(spec: Mapping[str, Any]) -> TemplateSpec:
    """Validate a template body; ``InvalidConfig`` errors have paths like ``["rules", 2]``."""
    return validate_as(TemplateSpec, spec, what="policy template")


def validate_product_policy(spec: Mapping[str, Any]) -> ProductPolicy:
    """Validate a product policy (templated or standalone); bounds are checked by ``resolve``."""
    return validate_as(PRODUCT_POLICY_ADAPTER, spec, what="product policy")


def validate_document(document: Mapping[str, Any], *, source: str | None = None) -> PolicyDocument:
    """Validate a whole document; error paths start at the document (``["spec", "rules", 0]``)."""
    envelope = validate_as(_Envelope, document, what="policy document")
    spec: TemplateSpec | ProductPolicy
    if envelope.kind is DocumentKind.POLICY_TEMPLATE:
        spec = validate_as(TemplateSpec, envelope.spec, what="policy template", prefix=("spec",))
    else:
        what = "product policy"
        spec = validate_as(PRODUCT_POLICY_ADAPTER, envelope.spec, what=what, prefix=("spec",))
    return PolicyDocument(kind=envelope.kind, name=envelope.name, spec=spec, source=source)


def _written(spec: TemplateSpec | ProductPolicy) -> dict[str, Any]:
    data = spec.model_dump(mode="json", exclude_unset=True)
    for key in ("rules", "extra_rules"):
        if key in data:
            data[key] = [_id_and_type_first(rule) for rule in data[key]]
    return data


def _id_and_type_first(rule: dict[str, Any]) -> dict[str, Any]:
    return {"id": rule["id"], "type": rule["type"], **rule}


def canonical_spec(spec: TemplateSpec | ProductPolicy) -> dict[str, Any]:
    """The canonical JSON of a validated spec."""
    data = spec.model_dump(mode="json")
    if isinstance(spec, TemplatedPolicySpec):
        data["overrides"] = spec.overrides.model_dump(mode="json", exclude_unset=True)
    for key in ("rules", "extra_rules"):
        if key in data:
            data[key] = sorted((_canonical_rule(rule) for rule in data[key]), key=_by("id"))
    for key in ("inhibit", "extra_inhibit"):
        if key in data:
            data[key] = sorted(
                (_canonical_inhibition(entry) for entry in data[key]), key=_by("source")
            )
    if "disable_rules" in data:
        data["disable_rules"] = sorted(data["disable_rules"])
    if isinstance(data.get("overridable", {}).get("allow_disable"), list):
        data["overridable"]["allow_disable"] = sorted(data["overridable"]["allow_disable"])
    if "guards" in data:
        data["guards"]["silences"] = sorted(data["guards"]["silences"], key=_json_key)
    return data


def canonical(document: Mapping[str, Any] | PolicyDocument) -> dict[str, Any]:
    """Canonical JSON of a whole document (validated first when given as a mapping)."""
    validated = document if isinstance(document, PolicyDocument) else validate_document(document)
    return validated.to_dict(canonical=True)


def fingerprint(spec: TemplateSpec | ProductPolicy) -> str:
    """SHA-256 of the canonical JSON: equal fingerprints mean the same policy."""
    encoded = json.dumps(canonical_spec(spec), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def _canonical_rule(rule: dict[str, Any]) -> dict[str, Any]:
    ordered = _id_and_type_first(rule)
    if isinstance(ordered.get("features"), list):
        ordered["features"] = sorted(ordered["features"])
    if isinstance(ordered.get("matchers"), list):
        ordered["matchers"] = sorted(ordered["matchers"], key=_json_key)
    return ordered


def _canonical_inhibition(entry: dict[str, Any]) -> dict[str, Any]:
    if isinstance(entry.get("targets"), list):
        return {**entry, "targets": sorted(entry["targets"])}
    return entry


def _by(field: str) -> Any:
    return lambda item: str(item.get(field))


def _json_key(item: Any) -> str:
    return json.dumps(item, sort_keys=True)
