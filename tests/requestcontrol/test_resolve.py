"""Model resolution: weighted splits, rewrite precedence, objectives, pass-through and 404s."""

from __future__ import annotations

import random
from collections import Counter

import orjson
import pytest

from inference_gateway.api.types import Criticality
from inference_gateway.requestcontrol.errors import GatewayError
from inference_gateway.requestcontrol.resolve import (
    OBJECTIVE_HEADER,
    REWRITE_HEADER,
    ModelResolver,
)
from tests.requestcontrol.fleet import MODELS, make_store

DRAWS = 10_000


def _shares(resolver: ModelResolver, model: str) -> dict[str, float]:
    counts = Counter(resolver.resolve(model, {}).target_model for _ in range(DRAWS))
    return {name: n / DRAWS for name, n in counts.items()}


def _assert_within(shares: dict[str, float], expected: dict[str, float], tolerance: float = 0.02) -> None:
    assert set(shares) == set(expected)
    for name, share in expected.items():
        assert abs(shares[name] - share) <= tolerance, (name, shares[name], share)


def test_weighted_split_follows_the_weights() -> None:
    resolver = ModelResolver(make_store(MODELS), random.Random(20250601))
    shares = _shares(resolver, "food-review")
    _assert_within(shares, {"food-review-v1": 0.7, "food-review-v2": 0.2, "food-review-v3": 0.1})


def test_targets_without_weights_split_evenly() -> None:
    resolver = ModelResolver(make_store(MODELS), random.Random(7))
    _assert_within(_shares(resolver, "summaries"), {"summaries-a": 0.5, "summaries-b": 0.5})


def test_rewrite_rule_split_follows_the_weights() -> None:
    rewrite = """\
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModelRewrite
metadata: {name: chat}
spec:
  poolRef: {name: pool}
  rules:
  - matches: [{model: {value: chat}}]
    targets: [{modelRewrite: chat-v1, weight: 3}, {modelRewrite: chat-v2, weight: 1}]
"""
    resolver = ModelResolver(make_store(rewrite), random.Random(99))
    _assert_within(_shares(resolver, "chat"), {"chat-v1": 0.75, "chat-v2": 0.25})


REWRITES = """\
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModelRewrite
metadata: {name: catch-all, creationTimestamp: "2025-01-01T00:00:00Z"}
spec:
  poolRef: {name: pool}
  rules: [{targets: [{modelRewrite: general}]}]
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModelRewrite
metadata: {name: chat-new, creationTimestamp: "2025-03-01T00:00:00Z"}
spec:
  poolRef: {name: pool}
  rules: [{matches: [{model: {value: chat}}], targets: [{modelRewrite: chat-from-newer}]}]
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModelRewrite
metadata: {name: chat-old, creationTimestamp: "2025-02-01T00:00:00Z"}
spec:
  poolRef: {name: pool}
  rules:
  - matches: [{model: {value: other}}]
    targets: [{modelRewrite: other-v1}]
  - matches: [{model: {value: summary}}, {model: {value: chat}}]
    targets: [{modelRewrite: chat-first-rule}]
  - matches: [{model: {value: chat}}]
    targets: [{modelRewrite: chat-second-rule}]
"""


@pytest.mark.parametrize(
    "model, target",
    [
        ("chat", "chat-first-rule"),  # exact beats match-all; oldest resource; first matching rule
        ("summary", "chat-first-rule"),  # matches are ORed
        ("other", "other-v1"),
        ("anything-else", "general"),  # a rule without matches matches every model
    ],
)
def test_rewrite_precedence(model: str, target: str) -> None:
    resolution = ModelResolver(make_store(REWRITES)).resolve(model, {})
    assert resolution.target_model == target
    assert resolution.criticality is Criticality.STANDARD


def test_rewrite_header_overrides_the_target_but_keeps_criticality() -> None:
    resolution = ModelResolver(make_store(MODELS)).resolve(
        "food-review", {REWRITE_HEADER: "food-review-canary"}
    )
    assert resolution.target_model == "food-review-canary"
    assert resolution.criticality is Criticality.CRITICAL


@pytest.mark.parametrize(
    "objective, priority, criticality",
    [("interactive", 10, Criticality.CRITICAL), ("batch", -1, Criticality.SHEDDABLE)],
)
def test_objective_header_sets_priority(objective: str, priority: int, criticality: Criticality) -> None:
    resolution = ModelResolver(make_store(MODELS)).resolve("summaries", {OBJECTIVE_HEADER: objective})
    assert (resolution.priority, resolution.criticality, resolution.objective) == (
        priority,
        criticality,
        objective,
    )
    assert resolution.labels()["criticality"] == criticality.label


def test_unknown_objective_falls_back_to_the_model_criticality() -> None:
    resolution = ModelResolver(make_store(MODELS)).resolve("food-review", {OBJECTIVE_HEADER: "no-such"})
    assert (resolution.priority, resolution.criticality, resolution.objective) == (
        1,
        Criticality.CRITICAL,
        "",
    )


def test_base_model_served_by_the_pool_passes_through_as_standard() -> None:
    store = make_store(MODELS)
    for endpoint in store.endpoints():
        endpoint.metrics.served_models = frozenset({"meta-llama/Llama-3.1-8B-Instruct"})
        endpoint.metrics.updated_at = 1.0
    resolution = ModelResolver(store).resolve("meta-llama/Llama-3.1-8B-Instruct", {})
    assert resolution.inference_model is None
    assert resolution.target_model == "meta-llama/Llama-3.1-8B-Instruct"
    assert (resolution.criticality, resolution.priority) == (Criticality.STANDARD, 0)


def test_unknown_model_is_a_404_json_error_in_strict_mode() -> None:
    store = make_store(MODELS)
    for endpoint in store.endpoints():
        endpoint.metrics.served_models = frozenset({"base"})
        endpoint.metrics.updated_at = 1.0
    assert ModelResolver(store).resolve("gpt-17", {}).target_model == "gpt-17"  # forwarded by default
    with pytest.raises(GatewayError) as info:
        ModelResolver(store, strict_models=True).resolve("gpt-17", {})
    assert info.value.status == 404
    error = orjson.loads(info.value.body())["error"]
    assert error["code"] == "model_not_found"
    assert "gpt-17" in error["message"]


def test_the_oldest_model_with_a_name_decides_its_criticality() -> None:
    duplicate = """\
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: imposter, creationTimestamp: "2030-01-01T00:00:00Z"}
spec: {modelName: food-review, criticality: Sheddable, poolRef: {name: pool}}
"""
    store = make_store(MODELS, duplicate)
    resolution = ModelResolver(store).resolve("food-review", {})
    assert resolution.criticality is Criticality.CRITICAL
    assert resolution.inference_model is not None and resolution.inference_model.ref.name == "food-review"
