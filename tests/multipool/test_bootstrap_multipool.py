"""The multi-pool Envoy bootstrap: a cluster per pool, a route per HTTPRoute match, and the pool
named to the EPP where Envoy resolves it (route, or the weighted cluster it picked)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from inference_gateway.api.types import FailureMode, ObjectRef
from inference_gateway.envoy.bootstrap import (
    EnvoyConfig,
    PoolCluster,
    bootstrap,
)
from inference_gateway.envoy.clusters import eds_resource, write_atomically
from inference_gateway.envoy.httproute import parse_httproutes
from inference_gateway.envoy.process import envoy_binary
from inference_gateway.envoy.routing import EXT_PROC, FAIL_OPEN_EXT_PROC, POOL_HEADER

A, B = ObjectRef("default", "pool-a"), ObjectRef("default", "pool-b")


def pool_ref(name: str, weight: int = 1) -> dict[str, Any]:
    return {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": name, "weight": weight}


def http_route(rules: list[dict[str, Any]], hostnames: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": rules}
    if hostnames:
        spec["hostnames"] = hostnames
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r" + str(len(hostnames or []))},
        "spec": spec,
    }


def config(
    tmp: Path, routes: list[dict[str, Any]], b_mode: FailureMode = FailureMode.FAIL_CLOSE
) -> EnvoyConfig:
    pools = (
        PoolCluster(A, str(tmp / "a.yaml")),
        PoolCluster(B, str(tmp / "b.yaml"), b_mode),
    )
    for p in pools:
        write_atomically(p.eds_path, eds_resource(["127.0.0.1:8000"], p.cluster))
    return EnvoyConfig(eds_path=str(tmp / "unused.yaml"), pools=pools, rules=tuple(parse_httproutes(routes)))


def hcm(boot: dict[str, Any]) -> dict[str, Any]:
    return boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def pool_metadata(per_filter: dict[str, Any], name: str = EXT_PROC) -> str:
    (entry,) = per_filter[name]["overrides"]["grpc_initial_metadata"]
    assert entry["key"] == POOL_HEADER
    return str(entry["value"])


def envoy_accepts(tmp: Path, boot: dict[str, Any]) -> None:
    path = tmp / "envoy.yaml"
    write_atomically(path, boot)
    done = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr


WEIGHTED = {"backendRefs": [pool_ref("pool-a", 3), pool_ref("pool-b", 1)]}
PINNED = {"matches": [{"headers": [{"name": "x-pool", "value": "b"}]}], "backendRefs": [pool_ref("pool-b")]}


def test_weighted_backends_name_their_pool_on_each_weighted_cluster(tmp_path: Path) -> None:
    boot = bootstrap(config(tmp_path, [http_route([WEIGHTED, PINNED])]))
    clusters = {c["name"] for c in boot["static_resources"]["clusters"]}
    assert clusters == {"epp", "inference-pool_default_pool-a", "inference-pool_default_pool-b"}
    (vhost,) = hcm(boot)["route_config"]["virtual_hosts"]
    pinned, weighted = vhost["routes"]  # the header match is more specific: tried first
    assert pinned["route"]["cluster"] == "inference-pool_default_pool-b"
    assert pool_metadata(pinned["typed_per_filter_config"]) == "default/pool-b"
    split = weighted["route"]["weighted_clusters"]["clusters"]
    assert [(c["weight"], pool_metadata(c["typed_per_filter_config"])) for c in split] == [
        (3, "default/pool-a"),
        (1, "default/pool-b"),
    ]
    assert "typed_per_filter_config" not in weighted  # only the picked cluster's config applies
    (ext_proc,) = [f for f in hcm(boot)["http_filters"] if f["name"] == EXT_PROC]
    assert ext_proc["disabled"] is True  # requests no route matches never reach the EPP
    envoy_accepts(tmp_path, boot)


def test_pools_with_different_failure_modes_get_one_filter_each(tmp_path: Path) -> None:
    boot = bootstrap(config(tmp_path, [http_route([WEIGHTED])], b_mode=FailureMode.FAIL_OPEN))
    filters = {f["name"]: f["typed_config"] for f in hcm(boot)["http_filters"]}
    assert filters[EXT_PROC]["failure_mode_allow"] is False
    assert filters[FAIL_OPEN_EXT_PROC]["failure_mode_allow"] is True
    assert filters[FAIL_OPEN_EXT_PROC]["processing_mode"]["request_body_mode"] == "BUFFERED"
    a, b = hcm(boot)["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["weighted_clusters"][
        "clusters"
    ]
    assert pool_metadata(a["typed_per_filter_config"], EXT_PROC) == "default/pool-a"
    assert a["typed_per_filter_config"][FAIL_OPEN_EXT_PROC]["disabled"] is True
    assert pool_metadata(b["typed_per_filter_config"], FAIL_OPEN_EXT_PROC) == "default/pool-b"
    assert b["typed_per_filter_config"][EXT_PROC]["disabled"] is True
    envoy_accepts(tmp_path, boot)


def test_hostnames_get_virtual_hosts_that_keep_the_shared_rules(tmp_path: Path) -> None:
    routes = [http_route([PINNED], hostnames=["b.example.com"]), http_route([WEIGHTED])]
    boot = bootstrap(config(tmp_path, routes))
    vhosts = {tuple(v["domains"]): v for v in hcm(boot)["route_config"]["virtual_hosts"]}
    assert hcm(boot)["strip_any_host_port"] is True
    host_routes = [r["name"] for r in vhosts[("b.example.com",)]["routes"]]
    assert host_routes == ["default/r1/rule-0", "default/r0/rule-0"]
    assert [r["name"] for r in vhosts[("*",)]["routes"]] == ["default/r0/rule-0"]
    envoy_accepts(tmp_path, boot)


def test_a_rule_with_every_weight_zero_answers_500(tmp_path: Path) -> None:
    zero = {"backendRefs": [pool_ref("pool-a", 0), pool_ref("pool-b", 0)]}
    boot = bootstrap(config(tmp_path, [http_route([zero])]))
    (route,) = hcm(boot)["route_config"]["virtual_hosts"][0]["routes"]
    assert route["direct_response"]["status"] == 500 and "route" not in route


def test_routes_to_pools_without_a_cluster_are_refused(tmp_path: Path) -> None:
    cfg = config(tmp_path, [http_route([{"backendRefs": [pool_ref("ghost")]}])])
    with pytest.raises(ValueError, match="default/ghost"):
        bootstrap(cfg)


def test_without_pools_the_single_cluster_bootstrap_is_unchanged(tmp_path: Path) -> None:
    boot = bootstrap(EnvoyConfig(eds_path=str(tmp_path / "eds.yaml")))
    assert [c["name"] for c in boot["static_resources"]["clusters"]] == ["epp", "inference-pool"]
    (vhost,) = hcm(boot)["route_config"]["virtual_hosts"]
    assert vhost["routes"][0]["route"]["cluster"] == "inference-pool"
    assert "typed_per_filter_config" not in vhost["routes"][0]
    assert "disabled" not in hcm(boot)["http_filters"][0]
