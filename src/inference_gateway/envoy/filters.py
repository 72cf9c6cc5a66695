"""The gateway's ext_proc filters: the routing filter (request headers and body to the EPP), the
composite filter that turns the response phases on for the requests the EPP marks, and the
observer that streams every response to the EPP off the critical path (observability mode,
response phases "observe"; "access-log" reports responses by access log instead: access_log.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inference_gateway.api.types import FailureMode
from inference_gateway.envoy.clusters import EPP_CLUSTER
from inference_gateway.envoy.routing import EXT_PROC

if TYPE_CHECKING:
    from inference_gateway.envoy.bootstrap import EnvoyConfig

# gRPC initial metadata on the EPP's streams: which job a stream does (see ResponsePhases).
EXT_PROC_ROLE = "x-gateway-ext-proc-role"
OBSERVE_ROLE = "observe"
ROUTE_OBSERVED_ROLE = "route-observed"
RESPONSE_ROLE = "response"
# Set by the EPP on a routed request whose response it must still see and change (model name
# rewrite): a composite filter then runs a response-only ext_proc for that request alone.
RESPONSE_PHASES_HEADER = "x-gateway-response-phases"
RESPONSE_PHASES_SEND = "send"
OBSERVE_EXT_PROC = "envoy.filters.http.ext_proc/observe"
# EnvoyConfig.response_phases values that report the response to the EPP off the critical path.
OFF_PATH_PHASES = ("access-log", "observe")
# Response headers the EPP decides at routing time travel as dynamic metadata in this namespace,
# and Envoy adds them (response phases "observe"): {metadata key: response header}.
RESPONSE_METADATA = "inference-gateway.response"


def duration(seconds: float) -> str:
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
    # A FailOpen (BUFFERED) route is answered after its headers, too late to turn the response
    # phases on for a model-name rewrite, so it keeps them.
    observed = cfg.response_phases in OFF_PATH_PHASES and not fail_open
    mode: dict[str, Any] = {
        "request_header_mode": "SEND",
        "response_header_mode": "SKIP" if observed else "SEND",
        "request_body_mode": body_mode,
        "response_body_mode": "NONE" if observed else "STREAMED",
        "request_trailer_mode": "SKIP" if fail_open else "SEND",
        "response_trailer_mode": "SKIP",
    }
    grpc_service: dict[str, Any] = {"envoy_grpc": {"cluster_name": EPP_CLUSTER}, "timeout": "10s"}
    if observed:
        # Tells the EPP the response arrives on the observer's stream, not on this one.
        grpc_service["initial_metadata"] = [{"key": EXT_PROC_ROLE, "value": ROUTE_OBSERVED_ROLE}]
    return {
        "name": name,
        **({"disabled": True} if disabled else {}),
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
            "grpc_service": grpc_service,
            "failure_mode_allow": fail_open,
            "status_on_error": {"code": "ServiceUnavailable"},
            "processing_mode": mode,
            "message_timeout": duration(cfg.message_timeout_s),
            **({} if observed else {"response_attributes": ["upstream.address"]}),
            # Envoy drops dynamic metadata from an ext_proc server unless its namespace is listed.
            "metadata_options": {"receiving_namespaces": {"untyped": _metadata_namespaces(observed)}},
            # Observed: the EPP turns the response phases on for a request whose model name it
            # rewrites in the response.
            "allow_mode_override": observed,
        },
    }


def response_filter(cfg: EnvoyConfig) -> dict[str, Any]:
    """Response phases on the critical path for the requests the EPP marks, and no others."""
    mode = {
        "request_header_mode": "SKIP",
        "response_header_mode": "SEND",
        "request_body_mode": "NONE",
        "response_body_mode": "STREAMED",
        "request_trailer_mode": "SKIP",
        "response_trailer_mode": "SKIP",
    }
    ext_proc = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
        "grpc_service": {
            "envoy_grpc": {"cluster_name": EPP_CLUSTER},
            "timeout": "10s",
            "initial_metadata": [{"key": EXT_PROC_ROLE, "value": RESPONSE_ROLE}],
        },
        "failure_mode_allow": True,  # the response is already flowing: never fail it here
        "processing_mode": mode,
        "message_timeout": duration(cfg.message_timeout_s),
        "response_attributes": ["request.id", "upstream.address"],
        # request-attribute-reporter's metadata (its default namespace) comes on this stream.
        "metadata_options": {"receiving_namespaces": {"untyped": ["envoy.lb"]}},
    }
    action = {
        "name": "response-phases",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.ExecuteFilterAction",
            "typed_config": {"name": f"{EXT_PROC}/response", "typed_config": ext_proc},
        },
    }
    header_input = {
        "name": "response-phases-header",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput",
            "header_name": RESPONSE_PHASES_HEADER,
        },
    }
    matcher = {"input": header_input, "exact_match_map": {"map": {RESPONSE_PHASES_SEND: {"action": action}}}}
    return {
        "name": "envoy.filters.http.composite",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            "extension_config": {
                "name": "composite",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.Composite"
                },
            },
            "xds_matcher": {"matcher_tree": matcher},
        },
    }


def _metadata_namespaces(observed: bool) -> list[str]:
    return ["envoy.lb", *([RESPONSE_METADATA] if observed else [])]


def observe_filter(cfg: EnvoyConfig) -> dict[str, Any]:
    """Streams each response to the EPP without waiting for it (Envoy's observability mode):
    status, served endpoint, usage and completion for its ledger and metrics, off the
    critical path. x-request-id ties the stream to the routing stream of the same request."""
    # Request headers too: they carry x-request-id, and they open the stream at once, so its
    # end marks the request's end even when no response ever comes (client gone).
    mode = {
        "request_header_mode": "SEND",
        "response_header_mode": "SEND",
        "request_body_mode": "NONE",
        "response_body_mode": "STREAMED",
        "request_trailer_mode": "SKIP",
        "response_trailer_mode": "SKIP",
    }
    return {
        "name": OBSERVE_EXT_PROC,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
            "grpc_service": {
                "envoy_grpc": {"cluster_name": EPP_CLUSTER},
                "timeout": "10s",
                "initial_metadata": [{"key": EXT_PROC_ROLE, "value": OBSERVE_ROLE}],
            },
            "observability_mode": True,
            # After the HTTP stream ends, how long Envoy keeps the stream for its last messages.
            "deferred_close_timeout": "1s",
            "failure_mode_allow": True,
            "processing_mode": mode,
            "response_attributes": ["upstream.address"],
        },
    }
