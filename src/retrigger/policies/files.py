"""Policy files as code: load YAML/JSON documents from a folder or file, dump them back to YAML.

A YAML file may hold several documents (``---``); a JSON file holds one document or a list.
Folders are read recursively in name order, skipping hidden entries. Every error names its
file, the document's position in it, and the path inside the document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, cast

import yaml

from retrigger.errors import InvalidConfig
from retrigger.policies.documents import DocumentKind, PolicyDocument, validate_document
from retrigger.policies.problems import ErrorDict, problem
from retrigger.policies.resolve import EffectivePolicy, resolve
from retrigger.policies.schemas import StandalonePolicySpec, TemplatedPolicySpec, TemplateSpec

__all__ = ["SUFFIXES", "PolicyBundle", "dump_documents", "load_bundle", "load_text"]

SUFFIXES: Final = frozenset({".yaml", ".yml", ".json"})
Format = Literal["yaml", "json"]


@dataclass(frozen=True, slots=True)
class PolicyBundle:
    """Validated documents in load order, unique per (kind, name)."""

    documents: tuple[PolicyDocument, ...]

    @property
    def templates(self) -> dict[str, PolicyDocument]:
        """Policy templates by name."""
        return {d.name: d for d in self.documents if d.kind is DocumentKind.POLICY_TEMPLATE}

    @property
    def products(self) -> dict[str, PolicyDocument]:
        """Product policies by product name."""
        return {d.name: d for d in self.documents if d.kind is DocumentKind.PRODUCT_POLICY}

    def resolve(self, product: str) -> EffectivePolicy:
        """Resolve a product against the bundle's template of the referenced name.

        For offline checks (``retrigger policy validate``): the bundle's template stands in for
        whichever version the product pins, since versions are assigned by the service.
        """
        spec = self.products[product].spec
        if isinstance(spec, TemplatedPolicySpec):
            template = self.templates.get(spec.template.name)
            if template is None:
                raise KeyError(f"template {spec.template.name!r} is not in the bundle")
            return resolve(spec, cast(TemplateSpec, template.spec))
        return resolve(cast(StandalonePolicySpec, spec))


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_bundle(path: str | Path) -> PolicyBundle:
    """Load every policy file under ``path`` (or that file); ``InvalidConfig`` lists all errors."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no such file or folder: {root}")
    files = [root] if root.is_file() else sorted(_policy_files(root))
    documents: list[PolicyDocument] = []
    errors: list[ErrorDict] = []
    for file in files:
        fmt: Format = "json" if file.suffix == ".json" else "yaml"
        found, problems = _load(file.read_text(encoding="utf-8"), source=str(file), fmt=fmt)
        documents.extend(found)
        errors.extend(problems)
    errors.extend(_duplicates(documents))
    if errors:
        raise InvalidConfig(_summary(errors), errors=errors)
    return PolicyBundle(tuple(documents))


def load_text(text: str, *, source: str = "<text>", fmt: Format = "yaml") -> list[PolicyDocument]:
    """Load the documents of one file's content."""
    documents, errors = _load(text, source=source, fmt=fmt)
    errors.extend(_duplicates(documents))
    if errors:
        raise InvalidConfig(_summary(errors), errors=errors)
    return documents


def dump_documents(
    documents: Iterable[PolicyDocument | Mapping[str, Any]], *, canonical: bool = False
) -> str:
    """YAML with one ``---`` document each, for ``retrigger policy export``."""
    dicts = [
        d.to_dict(canonical=canonical) if isinstance(d, PolicyDocument) else dict(d)
        for d in documents
    ]
    return yaml.safe_dump_all(
        dicts, sort_keys=False, allow_unicode=True, explicit_start=True, width=100
    )


def _policy_files(root: Path) -> Iterable[Path]:
    for file in root.rglob("*"):
        hidden = any(part.startswith(".") for part in file.relative_to(root).parts)
        if file.is_file() and file.suffix in SUFFIXES and not hidden:
            yield file


def _load(text: str, *, source: str, fmt: Format) -> tuple[list[PolicyDocument], list[ErrorDict]]:
    try:
        raw = _parse(text, fmt)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        return [], [
            _located(problem([], f"invalid_{fmt}", f"not valid {fmt.upper()}: {exc}"), source, None)
        ]
    documents: list[PolicyDocument] = []
    errors: list[ErrorDict] = []
    for index, item in enumerate(raw):
        if item is None:
            continue  # an empty document, e.g. a trailing '---'
        if not isinstance(item, Mapping):
            message = "a policy document must be a mapping with kind, name and spec"
            errors.append(_located(problem([], "document_type", message), source, index))
            continue
        try:
            documents.append(validate_document(item, source=f"{source}#{index}"))
        except InvalidConfig as exc:
            errors.extend(_located(error, source, index) for error in exc.errors)
    return documents, errors


def _parse(text: str, fmt: Format) -> list[Any]:
    if fmt == "json":
        parsed = json.loads(text)
        return parsed if isinstance(parsed, list) else [parsed]
    return list(yaml.load_all(text, Loader=_StrictLoader))  # noqa: S506 - a SafeLoader subclass


def _located(error: ErrorDict, source: str, index: int | None) -> ErrorDict:
    return {**error, "file": source, "document": index}


def _duplicates(documents: Iterable[PolicyDocument]) -> list[ErrorDict]:
    first: dict[tuple[DocumentKind, str], PolicyDocument] = {}
    errors: list[ErrorDict] = []
    for document in documents:
        key = (document.kind, document.name)
        if key in first:
            message = (
                f"duplicate {document.kind.value} {document.name!r}, first in {first[key].source}"
            )
            file, _, index = (document.source or "").rpartition("#")
            errors.append(
                _located(problem(["name"], "duplicate_document", message), file, int(index))
            )
        first.setdefault(key, document)
    return errors


def _summary(errors: list[ErrorDict]) -> str:
    head = errors[0]
    where = f"{head['file']}" + (
        f" document {head['document']}" if head["document"] is not None else ""
    )
    path = ".".join(str(part) for part in head["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid policy files: {where}{': ' + path if path else ''}: {head['msg']}{more}"
