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

from dataclasses import dataclass
from typing import Any

from inference_gateway.api.types import FailureMode, ObjectRef
from inference_gateway.envoy.access_log import USAGE_FILTER, grpc_access_log, usage_filter
from inference_gateway.envoy.clusters import (
    POOL_CLUSTER,
    epp_cluster,
    pool_clusters,
)
from inference_gateway.envoy.filters import (
    OFF_PATH_PHASES,
    RESPONSE_METADATA,
    RESPONSE_PHASES_HEADER,
    duration,
    ext_proc_filter,
    observe_filter,
    response_filter,
)
from inference_gateway.envoy.httproute import RouteRule
from inference_gateway.envoy.routing import ext_proc_names, virtual_hosts

SERVED_HEADER = "x-gateway-destination-endpoint-served"
EXPLAIN_HEADER = "x-gateway-explain"
METADATA_RESPONSE_HEADERS = {"explain": EXPLAIN_HEADER}
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
    h2c: bool = False  # the one-cluster setup's pool speaks cleartext HTTP/2 (appProtocol h2c)
    # How the response reaches the EPP (docs/benchmarks.md, "The gateway's own overhead"):
    # "access-log": off the critical path, batched. The routing filter handles the request only;
    #   Envoy adds the served-endpoint header itself, a Lua filter reads usage from the body as
    #   it streams by, and Envoy's gRPC access log reports each finished request to the EPP
    #   (completion, status, timings, usage), `access_log_flush_ms` apart at most.
    # "observe": as "access-log", but a second ext_proc filter in observability mode streams
    #   each response to the EPP on its own gRPC stream (one per request, every body chunk).
    # "send": both phases on the critical path, every response chunk a round trip (upstream's way).
    response_phases: str = "access-log"
    # "access-log": the longest an ended request waits in Envoy's buffer before the EPP hears of
    # it. Its in-flight ledger (what routing reads) lags by up to this much.
    access_log_flush_ms: int = 10
    # ... or until this many bytes of entries are buffered (one entry is ~0.5-1 KB).
    access_log_buffer_bytes: int = 16384

    def __post_init__(self) -> None:
        if self.response_phases not in RESPONSE_PHASES:
            choices = ", ".join(RESPONSE_PHASES)
            raise ValueError(f"response_phases: {self.response_phases!r} is not one of {choices}")
        if self.access_log_flush_ms < 1:
            raise ValueError(f"access_log_flush_ms: {self.access_log_flush_ms} must be at least 1")
        if self.access_log_buffer_bytes < 0:
            raise ValueError(f"access_log_buffer_bytes: {self.access_log_buffer_bytes} must be >= 0")

    @property
    def observed(self) -> bool:
        """The response reaches the EPP off the critical path ("access-log", "observe")."""
        return self.use_epp and self.response_phases in OFF_PATH_PHASES


RESPONSE_PHASES = ("access-log", "observe", "send")


@dataclass(frozen=True)
class PoolCluster:
    pool: ObjectRef
    eds_path: str
    failure_mode: FailureMode = FailureMode.FAIL_CLOSE
    h2c: bool = False  # the pool's appProtocol is kubernetes.io/h2c: cleartext HTTP/2 to its pods

    @property
    def cluster(self) -> str:
        return pool_cluster_name(self.pool)


def pool_cluster_name(pool: ObjectRef) -> str:
    return f"{POOL_CLUSTER}_{pool.namespace}_{pool.name}"


def _response_header(name: str, value: str) -> dict[str, Any]:
    return {
        "header": {"key": name, "value": value},
        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
        "keep_empty_value": False,  # absent metadata: no header
    }


def _response_headers() -> list[dict[str, Any]]:
    """The endpoint that served the response, from Envoy itself (the last try's, after retries),
    and the headers the EPP set as metadata when it routed."""
    headers = [_response_header(SERVED_HEADER, "%UPSTREAM_REMOTE_ADDRESS%")]
    for key, name in METADATA_RESPONSE_HEADERS.items():
        headers.append(_response_header(name, f"%DYNAMIC_METADATA({RESPONSE_METADATA}:{key})%"))
    return headers


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
            "timeout": duration(cfg.route_timeout_s),
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
    fail_close = (
        FailureMode.FAIL_CLOSE in {cfg.failure_mode}
        if not cfg.pools
        else any(p.failure_mode == FailureMode.FAIL_CLOSE for p in cfg.pools)
    )
    observer = _observer_filters(cfg) if fail_close else []
    if not cfg.pools:
        return [ext_proc_filter(cfg), *observer]
    # Off unless a route turns it on, so a request no HTTPRoute matches never reaches the EPP.
    routing = [
        ext_proc_filter(cfg, mode, name, disabled=True) for mode, name in ext_proc_names(cfg.pools).items()
    ]
    return [*routing, *observer]


def _observer_filters(cfg: EnvoyConfig) -> list[dict[str, Any]]:
    """What reports the response off the critical path, and the response-only ext_proc for the
    requests the EPP marks (model name rewrite)."""
    if cfg.response_phases == "observe":
        return [observe_filter(cfg), response_filter(cfg)]
    if cfg.response_phases == "access-log":
        return [response_filter(cfg), usage_filter()]
    return []


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


def _route_config(cfg: EnvoyConfig) -> dict[str, Any]:
    config: dict[str, Any] = {"name": "inference", "virtual_hosts": _virtual_hosts(cfg)}
    if cfg.observed:
        config["response_headers_to_add"] = _response_headers()
        config["request_headers_to_remove"] = [RESPONSE_PHASES_HEADER]
    return config


# One line per request that ended abnormally (an upstream reset or a stream cut mid-response,
# a timeout, no healthy upstream, the client going away): Envoy's response flags say which.
ABNORMAL_LOG_FORMAT = (
    "[%START_TIME%] abnormal request %REQ(X-REQUEST-ID)% %REQ(:METHOD)% %REQ(:PATH)% "
    "status=%RESPONSE_CODE% flags=%RESPONSE_FLAGS% details=%RESPONSE_CODE_DETAILS% "
    "upstream=%UPSTREAM_HOST% sent_bytes=%BYTES_SENT% duration_ms=%DURATION%\n"
)


def abnormal_access_log() -> dict[str, Any]:
    return {
        "name": "envoy.access_loggers.stdout",
        "filter": {"response_flag_filter": {}},  # any response flag set
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {"text_format_source": {"inline_string": ABNORMAL_LOG_FORMAT}},
        },
    }


def _listener(cfg: EnvoyConfig) -> dict[str, Any]:
    filters = _ext_proc_filters(cfg)
    access_log = [abnormal_access_log()]
    if any(f["name"] == USAGE_FILTER for f in filters):  # a FailClose route hands responses over
        access_log.append(grpc_access_log(cfg))
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "inference_gateway",
        "codec_type": "AUTO",
        "stream_idle_timeout": duration(cfg.stream_idle_timeout_s),
        "strip_any_host_port": True,
        # The id Envoy makes (or the client sent) goes to the EPP, which logs it, and back to the client.
        "always_set_request_id_in_response": True,
        "max_request_headers_kb": cfg.max_request_headers_kb,
        "common_http_protocol_options": {"max_headers_count": cfg.max_headers_count},
        "local_reply_config": local_reply_config(),
        "access_log": access_log,
        "route_config": _route_config(cfg),
        "http_filters": [
            *filters,
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


def bootstrap(cfg: EnvoyConfig) -> dict[str, Any]:
    return {
        "node": {"id": "inference-gateway", "cluster": "inference-gateway"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": cfg.admin_port}}},
        "static_resources": {
            "listeners": [_listener(cfg)],
            "clusters": [epp_cluster(cfg), *pool_clusters(cfg)],
        },
    }
