"""Retraining policies: templates, product policies, their validation, resolution and diff.

This package's pure layer (no database, no HTTP) is what the service calls:

- :func:`validate_template`, :func:`validate_product_policy`, :func:`validate_document`
- :func:`resolve` (template + overrides -> :class:`EffectivePolicy` with provenance)
- :func:`check_against_schema` (data-drift features vs the product's feature schema)
- :func:`canonical_spec`, :func:`canonical`, :func:`fingerprint` (idempotent apply)
- :func:`diff` (structural changes between two canonical documents)
- :func:`load_bundle`, :func:`load_text`, :func:`dump_documents` (policy files as code)

Every validation failure raises :class:`retrigger.errors.InvalidConfig` whose ``errors`` carry
``loc`` paths inside the submitted document. See ``docs/policies.md`` for the document format.
"""

from retrigger.policies.cron import CronError, CronExpression, next_fire, parse_cron
from retrigger.policies.diff import Change, ChangeOp, diff, flatten
from retrigger.policies.documents import (
    API_VERSION,
    DocumentKind,
    PolicyDocument,
    canonical,
    canonical_spec,
    fingerprint,
    validate_document,
    validate_product_policy,
    validate_template,
)
from retrigger.policies.durations import (
    CountWindow,
    DurationError,
    SinceRetrainWindow,
    TimeWindow,
    WindowSpec,
    format_duration,
    format_window,
    parse_duration,
    parse_window,
)
from retrigger.policies.features import FeatureKind, check_against_schema
from retrigger.policies.files import PolicyBundle, dump_documents, load_bundle, load_text
from retrigger.policies.resolve import EffectivePolicy, resolve
from retrigger.policies.schemas import (
    PolicyBody,
    ProductPolicy,
    StandalonePolicySpec,
    TemplatedPolicySpec,
    TemplateRef,
    TemplateSpec,
)
from retrigger.policies.target import PLACEHOLDERS, render_parameters

__all__ = [
    "API_VERSION",
    "PLACEHOLDERS",
    "Change",
    "ChangeOp",
    "CountWindow",
    "CronError",
    "CronExpression",
    "DocumentKind",
    "DurationError",
    "EffectivePolicy",
    "FeatureKind",
    "PolicyBody",
    "PolicyBundle",
    "PolicyDocument",
    "ProductPolicy",
    "SinceRetrainWindow",
    "StandalonePolicySpec",
    "TemplateRef",
    "TemplateSpec",
    "TemplatedPolicySpec",
    "TimeWindow",
    "WindowSpec",
    "canonical",
    "canonical_spec",
    "check_against_schema",
    "diff",
    "dump_documents",
    "fingerprint",
    "flatten",
    "format_duration",
    "format_window",
    "load_bundle",
    "load_text",
    "next_fire",
    "parse_cron",
    "parse_duration",
    "parse_window",
    "render_parameters",
    "resolve",
    "validate_document",
    "validate_product_policy",
    "validate_template",
]
