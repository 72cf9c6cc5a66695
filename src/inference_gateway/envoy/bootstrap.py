"""Generate the Envoy bootstrap that puts the EPP on the request path.

Routing uses Envoy's override_host load-balancing policy: it reads the EPP's ordered list
(primary plus fallbacks) from the `envoy.lb/x-gateway-destination-endpoint` metadata (the header
holds the primary alone), retries walk the list, and a request the EPP did not route (FailOpen)
falls back to round robin. The pool's endpoints reach Envoy through a file-based EDS resource that the gateway
rewrites whenever the datastore changes, so pods can come and go without restarting Envoy.

With `EnvoyConfig.pools` set (HTTPRoutes to several InferencePools), each pool gets its own
EDS cluster and each HTTPRoute rule its own Envoy route. Envoy picks the route, and for
weighted backendRefs the cluster, before the ext_proc filter runs (the pick is fixed per
stream, so the EPP's clear_route_cache re-resolves to the same cluster). The chosen route or
weighted cluster carries an ExtProcPerRoute override that adds the gRPC initial metadata
`x-gateway-inference-pool: <namespace>/<name>`, so the one EPP schedules on that pool's
endpoints only. Pools that differ in failureMode are served by two ext_proc filters, each
route enabling the one that matches its pool.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from inference_gateway.api.types import FailureMode, ObjectRef
from inference_gateway.envoy.httproute import RouteRule
from inference_gateway.envoy.routing import EXT_PROC, ext_proc_names, virtual_hosts

DESTINATION_HEADER = "x-gateway-destination-endpoint"
POOL_CLUSTER = "inference-pool"
EPP_CLUSTER = "epp"
# The EPP's immediate responses carry details "epp.<code>"; Envoy leaves their JSON bodies alone.
EPP_DETAILS_PREFIX = "epp."


@dataclass
class EnvoyConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8081
    admin_port: int = 0
    epp_host: str = "127.0.0.1"
    epp_port: int = 9002
    eds_path: str = ""
    failure_mode: FailureMode = FailureMode.FAIL_CLOSE
    message_timeout_s: float = 60.0
    # Whole request, response included: a stream longer than this is cut (docs/reliability.md).
    route_timeout_s: float = 600.0
    # No byte either way for this long ends the stream; must outlast a non-streaming generation.
    stream_idle_timeout_s: float = 300.0
    num_retries: int = 2
    # Upstream statuses that mean "not processed, try the next endpoint": see docs/reliability.md.
    retriable_status_codes: tuple[int, ...] = (503,)
    max_request_bytes: int = 16 * 1024 * 1024
    max_request_headers_kb: int = 60
    max_headers_count: int = 100
    epp_tls: dict[str, str] | None = None  # {"ca": path, "cert": path, "key": path}
    # Without epp_tls: TLS that trusts any certificate (the EPP's minted one, as upstream's
    # reference Envoy does), or plaintext for an EPP run with --secure-serving=false.
    epp_tls_unverified: bool = False
    # False gives the baseline a Kubernetes Service offers: plain round robin, no EPP on the path.
    use_epp: bool = True
    # Multi-pool: one EDS cluster per pool, routes from HTTPRoute rules. Empty: one cluster
    # (`inference-pool`, from eds_path) holding every endpoint; the EPP finds the pool by model.
    pools: tuple[PoolCluster, ...] = ()
    rules: tuple[RouteRule, ...] = ()


@dataclass(frozen=True)
class PoolCluster:
    pool: ObjectRef
    eds_path: str
    failure_mode: FailureMode = FailureMode.FAIL_CLOSE

    @property
    def cluster(self) -> str:
        return pool_cluster_name(self.pool)


def pool_cluster_name(pool: ObjectRef) -> str:
    return f"{POOL_CLUSTER}_{pool.namespace}_{pool.name}"


def _duration(seconds: float) -> str:
    return f"{seconds:.3f}s"


def ext_proc_filter(
    cfg: EnvoyConfig,
    failure_mode: FailureMode | None = None,
    name: str = EXT_PROC,
    disabled: bool = False,
) -> dict[str, Any]:
    # Envoy >= 1.35 rejects failure_mode_allow together with FULL_DUPLEX_STREAMED bodies, so a
    # FailOpen pool has the request body BUFFERED instead (bounded by the connection buffer).
    fail_open = (failure_mode or cfg.failure_mode) == FailureMode.FAIL_OPEN
    body_mode = "BUFFERED" if fail_open else "FULL_DUPLEX_STREAMED"
    mode: dict[str, Any] = {
        "request_header_mode": "SEND",
        "response_header_mode": "SEND",
        "request_body_mode": body_mode,
        "response_body_mode": "STREAMED",
        "request_trailer_mode": "SKIP" if fail_open else "SEND",
        "response_trailer_mode": "SKIP",
    }
    return {
        "name": name,
        **({"disabled": True} if disabled else {}),
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
            "grpc_service": {"envoy_grpc": {"cluster_name": EPP_CLUSTER}, "timeout": "10s"},
            "failure_mode_allow": fail_open,
            "status_on_error": {"code": "ServiceUnavailable"},
            "processing_mode": mode,
            "message_timeout": _duration(cfg.message_timeout_s),
            "response_attributes": ["upstream.address"],
            "allow_mode_override": False,
        },
    }


# Only failures where the model server cannot have started the work: see docs/reliability.md.
SAFE_RETRY_ON = "connect-failure,refused-stream,reset-before-request"


def _retry_policy(cfg: EnvoyConfig) -> dict[str, Any]:
    policy: dict[str, Any] = {"retry_on": SAFE_RETRY_ON, "num_retries": cfg.num_retries}
    if cfg.retriable_status_codes:
        policy["retry_on"] += ",retriable-status-codes"
        policy["retriable_status_codes"] = list(cfg.retriable_status_codes)
    policy["retry_host_predicate"] = [
        {
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
            },
        }
    ]
    policy["host_selection_retry_max_attempts"] = 5
    return policy


def _route(cfg: EnvoyConfig, target: dict[str, Any] | None = None) -> dict[str, Any]:
    """All paths to `target`: {"cluster": ...} or {"weighted_clusters": ...} (routing.py sets the match)."""
    return {
        "match": {"prefix": "/"},
        "route": {
            **(target or {"cluster": POOL_CLUSTER}),
            "timeout": _duration(cfg.route_timeout_s),
            "retry_policy": _retry_policy(cfg),
        },
    }


def _virtual_hosts(cfg: EnvoyConfig) -> list[dict[str, Any]]:
    if cfg.pools:
        return virtual_hosts(cfg, lambda target: _route(cfg, target))
    return [{"name": "inference", "domains": ["*"], "routes": [_route(cfg)]}]


def _ext_proc_filters(cfg: EnvoyConfig) -> list[dict[str, Any]]:
    if not cfg.use_epp:
        return []
    if not cfg.pools:
        return [ext_proc_filter(cfg)]
    # Off unless a route turns it on, so a request no HTTPRoute matches never reaches the EPP.
    return [
        ext_proc_filter(cfg, mode, name, disabled=True) for mode, name in ext_proc_names(cfg.pools).items()
    ]


def _cel(expression: str) -> dict[str, Any]:
    return {
        "extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                "expression": expression,
            },
        }
    }


def _json_error(message: str, error_type: str = "service_unavailable") -> dict[str, Any]:
    error = {"message": message, "type": error_type, "code": "%RESPONSE_CODE_DETAILS%"}
    return {"json_format": {"error": error}, "content_type": "application/json"}


# OpenAI error types for Envoy's own replies, first match wins (as GatewayError maps them).
_LOCAL_REPLY_TYPES = (
    ("response.code == 504", "timeout"),
    ("response.code < 500", "invalid_request_error"),  # 413 payload too large, 431, 400, 404
    ("true", "service_unavailable"),  # 503 no healthy upstream / reset, 502
)


def local_reply_config() -> dict[str, Any]:
    """Envoy's own errors (EPP unreachable, no upstream, timeouts, limits) in the same OpenAI
    JSON shape as the EPP's. The EPP's own immediate JSON errors (details prefixed "epp.") are
    left alone.
    """
    not_epp = f"!response.code_details.startsWith('{EPP_DETAILS_PREFIX}')"
    mappers: list[dict[str, Any]] = [
        {
            "filter": _cel("response.code_details.startsWith('ext_proc_error')"),
            "body_format_override": _json_error(
                "the endpoint picker is unavailable and the pool's failureMode is FailClose"
            ),
        }
    ]
    for condition, error_type in _LOCAL_REPLY_TYPES:
        mappers.append(
            {
                "filter": _cel(f"{not_epp} && {condition}"),
                "body_format_override": _json_error("%LOCAL_REPLY_BODY%", error_type),
            }
        )
    return {"mappers": mappers}


def _listener(cfg: EnvoyConfig) -> dict[str, Any]:
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "inference_gateway",
        "codec_type": "AUTO",
        "stream_idle_timeout": _duration(cfg.stream_idle_timeout_s),
        "strip_any_host_port": True,
        "max_request_headers_kb": cfg.max_request_headers_kb,
        "common_http_protocol_options": {"max_headers_count": cfg.max_headers_count},
        "local_reply_config": local_reply_config(),
        "route_config": {"name": "inference", "virtual_hosts": _virtual_hosts(cfg)},
        "http_filters": [
            *_ext_proc_filters(cfg),
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            },
        ],
    }
    return {
        "name": "gateway",
        "address": {"socket_address": {"address": cfg.listen_host, "port_value": cfg.listen_port}},
        "per_connection_buffer_limit_bytes": cfg.max_request_bytes + 1024 * 1024,
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
        ],
    }


def _epp_cluster(cfg: EnvoyConfig) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": EPP_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": EPP_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": cfg.epp_host, "port_value": cfg.epp_port}
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    if not cfg.epp_tls and cfg.epp_tls_unverified:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "common_tls_context": {"alpn_protocols": ["h2"], "validation_context": {}},
            },
        }
    if cfg.epp_tls:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": cfg.epp_tls.get("sni", "localhost"),
                "common_tls_context": {
                    "alpn_protocols": ["h2"],
                    "tls_certificates": [
                        {
                            "certificate_chain": {"filename": cfg.epp_tls["cert"]},
                            "private_key": {"filename": cfg.epp_tls["key"]},
                        }
                    ],
                    "validation_context": {"trusted_ca": {"filename": cfg.epp_tls["ca"]}},
                },
            },
        }
    return cluster


# Envoy's defaults (1024 requests, 3 concurrent retries) would throttle a busy LLM pool: streams are
# long-lived, and a dead pod makes every in-flight request retry at once.
CIRCUIT_BREAKERS = {
    "thresholds": [
        {
            "priority": "DEFAULT",
            "max_connections": 100000,
            "max_pending_requests": 100000,
            "max_requests": 100000,
            "max_retries": 100000,
        }
    ]
}


def _pool_cluster(name: str, eds_path: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "EDS",
        "connect_timeout": "1s",
        "circuit_breakers": CIRCUIT_BREAKERS,
        "eds_cluster_config": {
            "eds_config": {"path_config_source": {"path": eds_path}, "resource_api_version": "V3"}
        },
        "load_balancing_policy": {
            "policies": [
                {
                    "typed_extension_config": {
                        "name": "envoy.load_balancing_policies.override_host",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost",
                            "override_host_sources": [
                                # The metadata holds the ordered list (primary, fallbacks);
                                # the header only the primary, as upstream's protocol.
                                {"metadata": {"key": "envoy.lb", "path": [{"key": DESTINATION_HEADER}]}},
                                {"header": DESTINATION_HEADER},
                            ],
                            "fallback_policy": {
                                "policies": [
                                    {
                                        "typed_extension_config": {
                                            "name": "envoy.load_balancing_policies.round_robin",
                                            "typed_config": {
                                                "@type": "type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin"
                                            },
                                        }
                                    }
                                ]
                            },
                        },
                    }
                }
            ]
        },
    }


def bootstrap(cfg: EnvoyConfig) -> dict[str, Any]:
    return {
        "node": {"id": "inference-gateway", "cluster": "inference-gateway"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": cfg.admin_port}}},
        "static_resources": {
            "listeners": [_listener(cfg)],
            "clusters": [_epp_cluster(cfg), *_pool_clusters(cfg)],
        },
    }


def _pool_clusters(cfg: EnvoyConfig) -> list[dict[str, Any]]:
    if not cfg.pools:
        return [_pool_cluster(POOL_CLUSTER, cfg.eds_path)]
    return [_pool_cluster(p.cluster, p.eds_path) for p in cfg.pools]


def eds_resource(addresses: Iterable[str], cluster: str = POOL_CLUSTER) -> dict[str, Any]:
    endpoints = []
    for address in sorted(set(addresses)):
        host, _, port = address.rpartition(":")
        endpoints.append(
            {"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}
        )
    return {
        "version_info": str(hash(tuple(sorted(set(addresses)))) & 0xFFFFFFFF),
        "resources": [
            {
                "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
                "cluster_name": cluster,
                "endpoints": [{"lb_endpoints": endpoints}],
            }
        ],
    }


def write_atomically(path: str | Path, data: dict[str, Any]) -> None:
    """Envoy watches path_config_source files for a move, so replace them with a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    os.replace(tmp, path)
