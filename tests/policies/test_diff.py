"""Structural diff between policy documents, and the shared path syntax."""

from __future__ import annotations

from retrigger.policies import Change, ChangeOp, canonical_spec, diff, flatten, validate_template

from .factories import template_body


def _ops(changes: list[Change]) -> list[tuple[str, str]]:
    return [(change.op.value, change.path) for change in changes]


class TestDiff:
    def test_identical_documents(self) -> None:
        assert diff(template_body(), template_body()) == []

    def test_changed_rule_field_is_addressed_by_id(self) -> None:
        old = {"rules": [{"id": "staleness", "type": "staleness", "max_age": "30d"}]}
        new = {"rules": [{"id": "staleness", "type": "staleness", "max_age": "45d"}]}
        assert diff(old, new) == [
            Change(op=ChangeOp.CHANGE, path="rules[staleness].max_age", old="30d", new="45d")
        ]

    def test_rule_order_is_not_a_change(self) -> None:
        rules = [{"id": "a", "type": "staleness"}, {"id": "b", "type": "schedule"}]
        assert diff({"rules": rules}, {"rules": list(reversed(rules))}) == []

    def test_added_and_removed_rules_carry_the_whole_rule(self) -> None:
        old = {"rules": [{"id": "a", "type": "staleness", "max_age": "1d"}]}
        new = {"rules": [{"id": "b", "type": "schedule", "cron": "@daily"}]}
        assert diff(old, new) == [
            Change(op=ChangeOp.REMOVE, path="rules[a]", old=old["rules"][0]),
            Change(op=ChangeOp.ADD, path="rules[b]", new=new["rules"][0]),
        ]

    def test_added_and_removed_keys(self) -> None:
        changes = diff({"guards": {"cooldown": "1d"}}, {"guards": {"mode": "shadow"}})
        assert _ops(changes) == [("remove", "guards.cooldown"), ("add", "guards.mode")]

    def test_inhibitions_matched_by_source(self) -> None:
        old = {"inhibit": [{"source": "dq", "targets": ["a"]}]}
        new = {"inhibit": [{"source": "dq", "targets": ["a", "b"]}]}
        assert _ops(diff(old, new)) == [("change", "inhibit[dq].targets")]

    def test_first_item_of_an_empty_list_is_an_addition(self) -> None:
        changes = diff({"inhibit": []}, {"inhibit": [{"source": "dq", "targets": "*"}]})
        assert _ops(changes) == [("add", "inhibit[dq]")]

    def test_plain_lists_are_values(self) -> None:
        changes = diff({"features": ["a", "b"]}, {"features": ["a", "c"]})
        assert changes == [
            Change(op=ChangeOp.CHANGE, path="features", old=["a", "b"], new=["a", "c"])
        ]

    def test_type_change_is_a_change(self) -> None:
        assert _ops(diff({"combine": "any"}, {"combine": {"at_least": 2}})) == [
            ("change", "combine")
        ]

    def test_odd_keys_are_quoted(self) -> None:
        changes = diff({"parameters": {"a.b": 1}}, {"parameters": {"a.b": 2}})
        assert _ops(changes) == [("change", 'parameters["a.b"]')]

    def test_order_is_stable(self) -> None:
        old, new = template_body(), template_body(guards={"cooldown": "2d", "mode": "shadow"})
        new["rules"][3]["max_age"] = "40d"
        new["description"] = "changed"
        assert _ops(diff(old, new)) == [
            ("change", "description"),
            ("change", "guards.cooldown"),
            ("add", "guards.mode"),
            ("change", "rules[staleness].max_age"),
        ]
        assert diff(old, new) == diff(old, new)

    def test_canonical_forms_hide_spelling_differences(self) -> None:
        old = canonical_spec(validate_template(template_body(guards={"cooldown": "24h"})))
        new = canonical_spec(validate_template(template_body(guards={"cooldown": "1d"})))
        assert diff(old, new) == []


class TestFlatten:
    def test_paths_of_leaves(self) -> None:
        document = {
            "rules": [{"id": "cd", "type": "concept_drift", "params": {"delta": 0.1}}],
            "guards": {"silences": []},
            "combine": "any",
        }
        assert flatten(document) == {
            "rules[cd].type": "concept_drift",
            "rules[cd].params.delta": 0.1,
            "guards.silences": [],
            "combine": "any",
        }
