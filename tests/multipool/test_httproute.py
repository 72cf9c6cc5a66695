"""HTTPRoute parsing: Gateway API precedence order, defaults, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from inference_gateway.api.errors import ManifestError
from inference_gateway.api.types import ObjectRef
from inference_gateway.envoy.httproute import PathMatch, parse_httproutes, referenced_pools


def pool_ref(name: str, weight: int | None = None, **extra: Any) -> dict[str, Any]:
    ref = {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": name, **extra}
    if weight is not None:
        ref["weight"] = weight
    return ref


def route(name: str, rules: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, **meta},
        "spec": {"rules": rules},
    }


def test_rules_come_out_in_gateway_api_precedence_order() -> None:
    r = route(
        "r",
        [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [pool_ref("a")]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}], "backendRefs": [pool_ref("b")]},
            {"matches": [{"path": {"type": "Exact", "value": "/v1/x"}}], "backendRefs": [pool_ref("c")]},
            {
                "matches": [{"path": {"value": "/v1"}, "headers": [{"name": "X-Tier", "value": "gold"}]}],
                "backendRefs": [pool_ref("d")],
            },
            {"matches": [{"path": {"value": "/v1"}, "method": "POST"}], "backendRefs": [pool_ref("e")]},
        ],
    )
    rules = parse_httproutes([r, {"kind": "Service"}])
    assert [rule.backends[0].pool.name for rule in rules] == ["c", "e", "d", "b", "a"]
    assert rules[2].match.headers[0].name == "x-tier"  # header names are case-insensitive


def test_ties_go_to_the_older_route_then_to_the_name() -> None:
    catch_all = [{"backendRefs": [pool_ref("p")]}]
    newer = route("a-newer", catch_all, creationTimestamp="2025-02-01T00:00:00Z")
    older = route("z-older", catch_all, creationTimestamp="2025-01-01T00:00:00Z")
    same_time = route("b", catch_all, creationTimestamp="2025-02-01T00:00:00Z")
    rules = parse_httproutes([newer, same_time, older])
    assert [r.route.name for r in rules] == ["z-older", "a-newer", "b"]


def test_defaults_namespaces_weights_and_one_rule_per_match() -> None:
    r = route(
        "r",
        [
            {
                "matches": [{"path": {"value": "/a"}}, {"path": {"value": "/b"}}],
                "backendRefs": [pool_ref("x", 3), pool_ref("y", namespace="other")],
            },
            {"backendRefs": [pool_ref("x", 0)]},
        ],
        namespace="team",
    )
    rules = parse_httproutes([r])
    assert len(rules) == 3
    assert rules[0].backends == rules[1].backends
    assert [(b.pool, b.weight) for b in rules[0].backends] == [
        (ObjectRef("team", "x"), 3),
        (ObjectRef("other", "y"), 1),
    ]
    assert rules[2].match.path == PathMatch("PathPrefix", "/")
    assert rules[2].live_backends == ()
    assert referenced_pools(rules) == [ObjectRef("team", "x"), ObjectRef("other", "y")]


def test_every_unsupported_field_is_reported_at_once() -> None:
    bad = route(
        "bad",
        [
            {"backendRefs": [{"kind": "Service", "name": "svc", "port": 80}]},
            {"filters": [{"type": "RequestHeaderModifier"}], "backendRefs": [pool_ref("p", -1)]},
            {"matches": [{"path": {"type": "Glob", "value": "/*"}}], "backendRefs": [pool_ref("p")]},
        ],
    )
    with pytest.raises(ManifestError) as err:
        parse_httproutes([bad], "route.yaml")
    text = str(err.value)
    assert "HTTPRoute default/bad" in text
    assert "spec.rules[0].backendRefs[0]: only InferencePool backends" in text
    assert "spec.rules[1].filters" in text
    assert "spec.rules[1].backendRefs[0].weight" in text
    assert "spec.rules[2].matches[0].path" in text


def test_wrong_api_version_is_an_error() -> None:
    r = route("r", [{"backendRefs": [pool_ref("p")]}])
    r["apiVersion"] = "gateway.networking.k8s.io/v1alpha9"
    with pytest.raises(ManifestError, match="apiVersion"):
        parse_httproutes([r])
