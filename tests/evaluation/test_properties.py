"""Property: whatever the inputs, ``evaluate_policy`` returns and its dict is strict JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrigger.evaluation import (
    AlertInput,
    AlertView,
    ConceptDriftInput,
    DataDriftInput,
    MetricSeries,
    OutcomeWindow,
    PerformanceInput,
    RuleInput,
    ScheduleInput,
    StalenessInput,
    evaluate_policy,
)
from retrigger.policies.schemas import PolicyBody
from retrigger.stats.profiles import build_profile

from .factories import NOW, make_policy

_RNG = np.random.default_rng(11)
PROFILES = {
    "x": build_profile(_RNG.normal(size=300), "numeric"),
    "c": build_profile(_RNG.choice(["a", "b", "c"], size=300), "categorical"),
}
RULES: list[dict[str, Any]] = [
    {"id": "acc", "type": "performance", "metric": "accuracy", "threshold": 0.8, "min_samples": 1},
    {
        "id": "auc",
        "type": "performance",
        "metric": "auc",
        "relative_threshold": 0.1,
        "n": 3,
        "m": 2,
        "min_samples": 1,
    },
    {
        "id": "custom",
        "type": "performance",
        "metric": "lag",
        "direction": "lower_is_better",
        "threshold": 1,
        "min_samples": 1,
    },
    {"id": "drift", "type": "data_drift", "min_samples": 5, "weight_by_importance": True},
    {"id": "adwin", "type": "concept_drift"},
    {"id": "ddm", "type": "concept_drift", "detector": "ddm"},
    {"id": "stale", "type": "staleness", "max_age": "1d", "min_new_samples": 10},
    {"id": "cron", "type": "schedule", "cron": "30 2 * * *", "timezone": "Europe/Berlin"},
    {"id": "dq", "type": "alert", "matchers": [{"name": "alertname", "op": "=~", "value": "D.*"}]},
]
IDS = [rule["id"] for rule in RULES]

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1", "0", "true", "cat", "", " 2.5 ", "nan"]),
)
arrays = st.lists(values, max_size=25).map(lambda xs: np.array(xs, dtype=object))
floats = st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=25).map(np.array)
times = st.datetimes(datetime(2000, 1, 1), datetime(2030, 1, 1)).flatmap(
    lambda t: st.sampled_from([t, t.replace(tzinfo=UTC)])
)


@st.composite
def performance(draw: st.DrawFn) -> PerformanceInput:
    outcomes = draw(st.none() | st.builds(OutcomeWindow, arrays, arrays, st.none() | floats))
    points = draw(st.none() | st.builds(MetricSeries, floats, st.lists(times, max_size=3)))
    baseline = draw(st.none() | st.floats(allow_nan=True, allow_infinity=True))
    history = draw(st.lists(st.none() | st.booleans(), max_size=6))
    return PerformanceInput(outcomes, points, baseline, history)


@st.composite
def drift(draw: st.DrawFn) -> DataDriftInput:
    current = draw(st.dictionaries(st.sampled_from(["x", "c"]), arrays | floats))
    weights = draw(st.dictionaries(st.sampled_from(["x", "c"]), st.floats(allow_nan=True)))
    version = draw(st.none() | st.integers(1, 5))
    return DataDriftInput(version, PROFILES, current, weights)


@st.composite
def concept(draw: st.DrawFn) -> ConceptDriftInput:
    state = draw(st.none() | st.just({"detector": "adwin", "format": 1}) | st.just({}))
    errors = draw(floats | st.lists(st.sampled_from([0.0, 1.0]), max_size=200).map(np.array))
    return ConceptDriftInput(state, errors)


labels = st.dictionaries(st.sampled_from(["alertname", "severity"]), st.text(max_size=4))
alert_views = st.builds(
    AlertView,
    st.text(max_size=4),
    labels,
    st.sampled_from(["firing", "resolved", "FIRING"]),
    st.none() | times,
    st.sampled_from(["alertmanager", "grafana"]),
)

INPUTS: dict[str, st.SearchStrategy[Any]] = {
    "acc": performance(),
    "auc": performance(),
    "custom": performance(),
    "drift": drift(),
    "adwin": concept(),
    "ddm": concept(),
    "stale": st.builds(StalenessInput, st.none() | times, st.integers(0, 20)),
    "cron": st.builds(ScheduleInput, st.none() | times),
    "dq": st.builds(AlertInput, st.lists(alert_views, max_size=3)),
}


@st.composite
def policies(draw: st.DrawFn) -> PolicyBody:
    sources = draw(st.lists(st.sampled_from(IDS), unique=True, max_size=2))
    counted = len(RULES) - len(sources)  # inhibition sources never count towards combine
    combine = draw(
        st.sampled_from(["any", "all"]) | st.integers(1, counted).map(lambda k: {"at_least": k})
    )
    inhibit = [
        {
            "source": s,
            "targets": draw(
                st.just("*")
                | st.lists(st.sampled_from([i for i in IDS if i != s]), min_size=1, unique=True)
            ),
        }
        for s in sources
    ]
    return make_policy(RULES, combine=combine, inhibit=inhibit)


@st.composite
def rule_inputs(draw: st.DrawFn) -> dict[str, RuleInput]:
    chosen = draw(st.lists(st.sampled_from(IDS), unique=True))
    wrong = draw(st.sampled_from(IDS))
    inputs = {rule_id: draw(INPUTS[rule_id]) for rule_id in chosen}
    if wrong in inputs:
        inputs[wrong] = StalenessInput(None) if wrong != "stale" else AlertInput()
    return inputs


class TestEvaluatePolicyProperties:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        policy=policies(),
        inputs=rule_inputs(),
        shift=st.integers(-(10**6), 10**6),
    )
    def test_never_raises_and_is_strict_json(
        self, policy: PolicyBody, inputs: dict[str, RuleInput], shift: int
    ) -> None:
        result = evaluate_policy(policy, inputs, NOW + timedelta(minutes=shift))
        text = json.dumps(result.as_dict(), allow_nan=False)
        assert json.loads(text)["outcome"] in {"fired", "not_fired", "insufficient_data"}
        assert [f.rule_id for f in result.findings] == IDS
