"""The response, reported to the EPP in batches (`EnvoyConfig.response_phases = "access-log"`).

Nothing per request reaches the EPP after routing. A Lua filter reads each response body as it
streams by (usage.lua: token counts, chunk count, first-byte time; never buffering it) and puts
what it finds in dynamic metadata; Envoy's gRPC access logger sends one entry per finished
HTTP stream (aborted ones included) with status, served endpoint, timings and that metadata,
batched over `access_log_flush_ms`, to the EPP's AccessLogService on the ext_proc port
(extproc/access_log.py), which completes the request's context there.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING, Any

from inference_gateway.envoy.clusters import EPP_CLUSTER

if TYPE_CHECKING:
    from inference_gateway.envoy.bootstrap import EnvoyConfig

# Dynamic metadata namespace usage.lua writes (and the ALS entry carries).
USAGE_METADATA = "inference-gateway.usage"
USAGE_FILTER = "envoy.filters.http.lua/usage"
# The stream's log name: the EPP's AccessLogService reads entries of this log only.
LOG_NAME = "inference-gateway"


def usage_script() -> str:
    return files("inference_gateway.envoy").joinpath("usage.lua").read_text()


def usage_filter() -> dict[str, Any]:
    """Placed after the ext_proc filters, so it sees the model server's bytes (before any model
    name rewrite on the way back)."""
    return {
        "name": USAGE_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": usage_script()},
        },
    }


def grpc_access_log(cfg: EnvoyConfig) -> dict[str, Any]:
    """One entry per HTTP stream when it ends, streamed to the EPP in batches."""
    return {
        "name": "envoy.access_loggers.http_grpc",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
            "common_config": {
                "log_name": LOG_NAME,
                "grpc_service": {"envoy_grpc": {"cluster_name": EPP_CLUSTER}},
                "transport_api_version": "V3",
                # Completion reaches the in-flight ledger at most this late (routing reads it).
                "buffer_flush_interval": f"{cfg.access_log_flush_ms / 1000:.3f}s",
                # Bytes buffered before a flush regardless of the interval (an entry is ~1 KB).
                "buffer_size_bytes": cfg.access_log_buffer_bytes,
            },
        },
    }
