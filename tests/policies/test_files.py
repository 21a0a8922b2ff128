"""Policy files: loading folders and files of YAML/JSON documents, dumping them back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrigger.errors import InvalidConfig
from retrigger.policies import DocumentKind, dump_documents, load_bundle, load_text

from .factories import product_body, template_body

TEMPLATE_DOC = {"kind": "PolicyTemplate", "name": "tier-1-classifier", "spec": template_body()}
PRODUCT_DOC = {"kind": "ProductPolicy", "name": "fraud-scorer", "spec": product_body()}


def _write(path: Path, *documents: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    return path


def _errors(path: Path) -> list[dict[str, Any]]:
    with pytest.raises(InvalidConfig) as exc:
        load_bundle(path)
    return exc.value.errors


class TestLoadBundle:
    def test_folder_read_recursively(self, tmp_path: Path) -> None:
        _write(tmp_path / "templates" / "classifier.yaml", TEMPLATE_DOC)
        _write(tmp_path / "products" / "fraud.yml", PRODUCT_DOC)
        bundle = load_bundle(tmp_path)
        assert list(bundle.templates) == ["tier-1-classifier"]
        assert list(bundle.products) == ["fraud-scorer"]

    def test_several_documents_per_file(self, tmp_path: Path) -> None:
        bundle = load_bundle(_write(tmp_path / "all.yaml", TEMPLATE_DOC, PRODUCT_DOC))
        assert [d.kind for d in bundle.documents] == [
            DocumentKind.POLICY_TEMPLATE,
            DocumentKind.PRODUCT_POLICY,
        ]
        assert bundle.documents[1].source == f"{tmp_path / 'all.yaml'}#1"

    def test_json_file_with_one_or_many_documents(self, tmp_path: Path) -> None:
        (tmp_path / "one.json").write_text(json.dumps(TEMPLATE_DOC))
        (tmp_path / "many.json").write_text(json.dumps([PRODUCT_DOC]))
        assert len(load_bundle(tmp_path).documents) == 2

    def test_hidden_and_foreign_files_are_skipped(self, tmp_path: Path) -> None:
        _write(tmp_path / ".git" / "x.yaml", {"kind": "Nonsense"})
        (tmp_path / "README.md").write_text("# policies")
        _write(tmp_path / "t.yaml", TEMPLATE_DOC)
        assert len(load_bundle(tmp_path).documents) == 1

    def test_empty_documents_are_skipped(self, tmp_path: Path) -> None:
        path = tmp_path / "t.yaml"
        path.write_text("---\n" + yaml.safe_dump(TEMPLATE_DOC) + "---\n")
        assert len(load_bundle(path).documents) == 1

    def test_missing_path(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            load_bundle(tmp_path / "nope")

    def test_errors_carry_file_document_and_path(self, tmp_path: Path) -> None:
        bad = {**PRODUCT_DOC, "spec": product_body(overrides={"guards": {"cooldown": "0h"}})}
        path = _write(tmp_path / "p.yaml", PRODUCT_DOC | {"name": "ok"}, bad)
        assert _errors(path) == [
            {
                "loc": ["spec", "overrides", "guards", "cooldown"],
                "msg": "duration 0h must be greater than zero",
                "type": "invalid_duration",
                "file": str(path),
                "document": 1,
            }
        ]

    def test_errors_from_every_file_are_collected(self, tmp_path: Path) -> None:
        _write(tmp_path / "a.yaml", {"kind": "PolicyTemplate", "name": "a", "spec": {}})
        _write(tmp_path / "b.yaml", {"kind": "Wrong", "name": "b"})
        files = {Path(error["file"]).name for error in _errors(tmp_path)}
        assert files == {"a.yaml", "b.yaml"}

    def test_yaml_syntax_error(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.yaml"
        path.write_text("kind: [unclosed\n")
        (error,) = _errors(path)
        assert (error["type"], error["file"], error["document"]) == (
            "invalid_yaml",
            str(path),
            None,
        )

    def test_duplicate_yaml_keys_are_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "dup.yaml"
        path.write_text("kind: PolicyTemplate\nname: a\nname: b\nspec: {}\n")
        (error,) = _errors(path)
        assert "duplicate key 'name'" in error["msg"]

    def test_document_must_be_a_mapping(self, tmp_path: Path) -> None:
        path = tmp_path / "list.yaml"
        path.write_text("- a\n- b\n")
        assert _errors(path)[0]["type"] == "document_type"

    def test_duplicate_documents(self, tmp_path: Path) -> None:
        _write(tmp_path / "a.yaml", TEMPLATE_DOC)
        _write(tmp_path / "b.yaml", TEMPLATE_DOC)
        (error,) = _errors(tmp_path)
        assert (Path(error["file"]).name, error["loc"], error["type"]) == (
            "b.yaml",
            ["name"],
            "duplicate_document",
        )

    def test_resolve_against_the_bundles_template(self, tmp_path: Path) -> None:
        bundle = load_bundle(_write(tmp_path / "all.yaml", TEMPLATE_DOC, PRODUCT_DOC))
        assert bundle.resolve("fraud-scorer").template == "tier-1-classifier@3"


class TestLoadText:
    def test_loads_yaml_text(self) -> None:
        (document,) = load_text(yaml.safe_dump(TEMPLATE_DOC), source="inline")
        assert document.source == "inline#0"

    def test_errors_name_the_source(self) -> None:
        with pytest.raises(InvalidConfig) as exc:
            load_text('{"kind": "PolicyTemplate"', source="body.json", fmt="json")
        assert exc.value.errors[0]["file"] == "body.json"


class TestDumpDocuments:
    def test_round_trip(self, tmp_path: Path) -> None:
        bundle = load_bundle(_write(tmp_path / "all.yaml", TEMPLATE_DOC, PRODUCT_DOC))
        reloaded = load_text(dump_documents(bundle.documents))
        assert [d.to_dict(canonical=True) for d in reloaded] == [
            d.to_dict(canonical=True) for d in bundle.documents
        ]

    def test_written_form_is_concise(self) -> None:
        (document,) = load_text(yaml.safe_dump(PRODUCT_DOC))
        assert yaml.safe_load(dump_documents([document])) == {
            "api_version": "retrigger/v1",
            "kind": "ProductPolicy",
            "name": "fraud-scorer",
            "spec": {"template": {"name": "tier-1-classifier", "version": 3}},
        }

    def test_canonical_form_round_trips(self) -> None:
        (document,) = load_text(yaml.safe_dump(TEMPLATE_DOC))
        dumped = dump_documents([document], canonical=True)
        (again,) = load_text(dumped)
        assert again.to_dict(canonical=True) == document.to_dict(canonical=True)

    def test_dumps_plain_mappings(self) -> None:
        assert yaml.safe_load(dump_documents([{"kind": "X"}])) == {"kind": "X"}
