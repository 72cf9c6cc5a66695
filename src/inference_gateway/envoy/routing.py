"""Envoy routes for HTTPRoutes to several InferencePools (used by bootstrap.py).

Every generated route (or weighted cluster) carries, for each ext_proc filter in the chain, an
ExtProcPerRoute config: the filter serving the pool's failureMode is enabled with the gRPC
initial metadata `x-gateway-inference-pool: <namespace>/<name>`; any other is disabled. The
config sits where Envoy resolves it for the request: on the route for a single backend, on the
chosen `weighted_clusters` entry otherwise, so the EPP is told the pool Envoy already picked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from inference_gateway.api.types import FailureMode, ObjectRef
from inference_gateway.envoy.httproute import RouteMatch, RouteRule

if TYPE_CHECKING:
    from inference_gateway.envoy.bootstrap import EnvoyConfig, PoolCluster

POOL_HEADER = "x-gateway-inference-pool"
EXT_PROC = "envoy.filters.http.ext_proc"
FAIL_OPEN_EXT_PROC = f"{EXT_PROC}/fail-open"
EXT_PROC_PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute"

# Builds a route (timeouts, retries) to {"cluster": ...} or {"weighted_clusters": ...}.
RouteBuilder = Callable[[dict[str, Any]], dict[str, Any]]


def ext_proc_names(pools: Sequence[PoolCluster]) -> dict[FailureMode, str]:
    """The ext_proc filter serving each failureMode in use (the plain name when only one is)."""
    modes = {p.failure_mode for p in pools} or {FailureMode.FAIL_CLOSE}
    if len(modes) == 1:
        return {modes.pop(): EXT_PROC}
    return {FailureMode.FAIL_CLOSE: EXT_PROC, FailureMode.FAIL_OPEN: FAIL_OPEN_EXT_PROC}


def virtual_hosts(cfg: EnvoyConfig, build: RouteBuilder) -> list[dict[str, Any]]:
    """One virtual host per hostname the routes name (with the hostname-less rules after its
    own), then a catch-all for rules without hostnames."""
    pools = {p.pool: p for p in cfg.pools}
    unknown = {str(b.pool) for r in cfg.rules for b in r.backends if b.pool not in pools}
    if unknown:
        raise ValueError(f"HTTPRoute backendRefs name pools with no cluster: {', '.join(sorted(unknown))}")
    filters = ext_proc_names(cfg.pools) if cfg.use_epp else {}
    hosts = sorted({h for r in cfg.rules for h in r.hostnames})
    vhosts = []
    for host in hosts:
        own = [r for r in cfg.rules if host in r.hostnames]
        shared = [r for r in cfg.rules if not r.hostnames]
        routes = [_route(build, r, pools, filters) for r in own + shared]
        vhosts.append({"name": f"host-{host}", "domains": [host], "routes": routes})
    catch_all = [_route(build, r, pools, filters) for r in cfg.rules if not r.hostnames]
    vhosts.append({"name": "inference", "domains": ["*"], "routes": catch_all})
    return vhosts


def _route(
    build: RouteBuilder,
    rule: RouteRule,
    pools: Mapping[ObjectRef, PoolCluster],
    filters: dict[FailureMode, str],
) -> dict[str, Any]:
    live = rule.live_backends
    if not live:
        # Gateway API: a rule whose backends all have weight 0 answers 500.
        body = {"inline_string": "no backend has weight"}
        return {
            "name": rule.name,
            "match": envoy_match(rule.match),
            "direct_response": {"status": 500, "body": body},
        }
    if len(live) == 1:
        pool = pools[live[0].pool]
        route = build({"cluster": pool.cluster})
        route["typed_per_filter_config"] = per_filter_config(pool, filters)
    else:
        clusters = [
            {
                "name": pools[b.pool].cluster,
                "weight": b.weight,
                "typed_per_filter_config": per_filter_config(pools[b.pool], filters),
            }
            for b in live
        ]
        route = build({"weighted_clusters": {"clusters": clusters}})
    return {**route, "name": rule.name, "match": envoy_match(rule.match)}


def per_filter_config(pool: PoolCluster, filters: dict[FailureMode, str]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for mode, name in filters.items():
        if mode == pool.failure_mode or len(filters) == 1:
            metadata = [{"key": POOL_HEADER, "value": str(pool.pool)}]
            config[name] = {"@type": EXT_PROC_PER_ROUTE, "overrides": {"grpc_initial_metadata": metadata}}
        else:
            config[name] = {"@type": EXT_PROC_PER_ROUTE, "disabled": True}
    return config


def envoy_match(match: RouteMatch) -> dict[str, Any]:
    path = match.path
    out: dict[str, Any]
    if path.kind == "Exact":
        out = {"path": path.value}
    elif path.kind == "RegularExpression":
        out = {"safe_regex": {"regex": path.value}}
    elif path.value.rstrip("/") == "":
        out = {"prefix": "/"}
    else:
        # Gateway API prefixes match whole path segments: /v1 matches /v1 and /v1/x, not /v1x.
        out = {"path_separated_prefix": path.value.rstrip("/")}
    headers = [
        {
            "name": h.name,
            "string_match": {"safe_regex": {"regex": h.value}} if h.regex else {"exact": h.value},
        }
        for h in match.headers
    ]
    if match.method:
        headers.append({"name": ":method", "string_match": {"exact": match.method}})
    if headers:
        out["headers"] = headers
    return out
