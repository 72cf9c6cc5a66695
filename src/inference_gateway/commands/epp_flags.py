"""The `epp` command line: upstream's EPP flags (cmd/epp/runner, v1.5) with their meaning and
defaults, plus ours. Parsed like Go's pflag: `--flag value`, `--flag=value`, bare `--bool`,
`--bool=false`, `-v 2`. Flags the EPP accepts but cannot honour print one warning line each.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from inference_gateway.commands.epp import EPPCommand

log = logging.getLogger(__name__)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# Upstream's logutil verbosity: DEFAULT 2, VERBOSE 3, DEBUG 4, TRACE 5.
DEBUG_VERBOSITY = 4


def go_duration(text: str) -> float:
    """A Go duration ("50ms", "2s", "1m30s") in seconds."""
    text = text.strip()
    if text == "0":
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (Go syntax: 50ms, 2s, 1m30s)")
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def go_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "t", "true"):
        return True
    if value in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r} (true or false)")


def int_list(text: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid list of numbers {text!r} (e.g. 8000,8001)") from None


# Upstream flags the EPP accepts without acting on them, and why (one warning line each).
IGNORED = {
    "refresh-prometheus-metrics-interval": "the EPP computes its own metrics when Prometheus scrapes",
    "enable-pprof": "there is no pprof in Python; use py-spy",
    "enable-cert-reload": "certificates are read once at start; restart the EPP to rotate them",
    "zap-devel": "logging has one format per --zap-encoder",
    "zap-stacktrace-level": "tracebacks are logged only at debug level",
    "zap-time-encoding": "times are ISO 8601",
    "model-server-metrics-port": "deprecated upstream; metrics are scraped on each endpoint's own port",
}
# Upstream's legacy metric flags: a Prometheus spec per signal (`name` or `name{label=value}`).
METRIC_FLAGS = {
    "total-queued-requests-metric": "queue",
    "total-running-requests-metric": "running",
    "kv-cache-usage-percentage-metric": "kv",
    "lora-info-metric": "lora",
    "cache-info-metric": "cache_info",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inference-gateway epp",
        usage="%(prog)s [flags]",
        description="Run the Endpoint Picker, fed by Kubernetes (--pool-name or --endpoint-selector) "
        "or by a directory of YAML (--resources). Upstream's EPP flags are accepted with their meaning.",
        allow_abbrev=False,
    )

    def flag(name: str, typ: Any = str, default: object = None, help: str = "", short: str = "") -> None:
        names = [f"--{name}", *([short] if short else [])]
        if typ is bool:
            p.add_argument(*names, type=go_bool, nargs="?", const=True, default=default, help=help)
        else:
            p.add_argument(*names, type=typ, default=default, help=help)

    flag("grpc-port", int, 9002, "gRPC port used for communicating with Envoy proxy")
    flag("ha-enable-leader-election", bool, False, "elect a leader by Lease; only the leader is ready")
    flag("pool-group", str, "inference.networking.k8s.io", "API group of the InferencePool")
    flag("pool-namespace", str, "", "namespace of the InferencePool (default: $NAMESPACE, else default)")
    flag("pool-name", str, "", "name of the InferencePool this EPP serves (Kubernetes)")
    flag(
        "endpoint-selector", str, "", "serve pods matching key=value[,key=value] instead of an InferencePool"
    )
    flag("endpoint-target-ports", int_list, [], "model server ports for --endpoint-selector (1-8)")
    flag("disable-endpoint-subset-filter", bool, False, "ignore the envoy.lb.subset_hint metadata")
    flag("model-server-metrics-scheme", str, None, "http or https (default: metrics-data-source, http)")
    flag("model-server-metrics-path", str, None, "metrics path (default: metrics-data-source, /metrics)")
    flag("model-server-metrics-port", int, 0, "deprecated upstream; accepted and ignored")
    flag("model-server-metrics-https-insecure-skip-verify", bool, None, "skip certificate checks (https)")
    flag("refresh-metrics-interval", go_duration, None, "scrape interval (Go duration; default 50ms)")
    flag("refresh-prometheus-metrics-interval", go_duration, 5.0, "accepted and ignored")
    flag("metrics-staleness-threshold", go_duration, None, "metrics older than this are stale (default 2s)")
    flag("metrics-scrape-timeout", go_duration, None, "give up on one scrape after this (ours; default 1s)")
    for metric_flag in METRIC_FLAGS:
        flag(metric_flag, str, None, "Prometheus metric spec, name{label=value} ('' disables it)")
    flag("v", int, 0, "log verbosity (4 and above: debug)", short="-v")
    flag("zap-log-level", str, None, "debug, info, error, or a verbosity number")
    flag("zap-encoder", str, "console", "json or console log lines")
    flag("zap-devel", bool, False, "accepted and ignored")
    flag("zap-stacktrace-level", str, None, "accepted and ignored")
    flag("zap-time-encoding", str, None, "accepted and ignored")
    flag("tracing", bool, True, "export traces (OTLP; endpoint from OTEL_EXPORTER_OTLP_ENDPOINT)")
    flag("health-checking", bool, False, "serve grpc.health.v1 on the ext_proc port too")
    flag("metrics-port", int, 9090, "Prometheus /metrics port")
    flag("grpc-health-port", int, 9003, "grpc.health.v1 port for liveness and readiness")
    flag("enable-pprof", bool, True, "accepted and ignored")
    flag("cert-path", Path, None, "dir with tls.crt and tls.key; without it a certificate is minted")
    flag("enable-cert-reload", bool, False, "accepted and ignored")
    flag("secure-serving", bool, True, "serve ext_proc over TLS")
    flag("metrics-endpoint-auth", bool, True, "accepted; /metrics is not authenticated")
    flag("config-file", Path, None, "EndpointPickerConfig YAML file")
    flag("config-text", str, None, "EndpointPickerConfig YAML text, instead of a file")
    flag("kubeconfig", str, None, "kubeconfig path (default: $KUBECONFIG, else in-cluster)")

    flag("resources", Path, None, "directory of YAML resources instead of Kubernetes")
    flag("host", str, "0.0.0.0", "address to bind")
    flag("followers-serve", bool, False, "with leader election, followers serve ext_proc too")
    flag("require-client-cert", bool, False, "mTLS: verify the gateway's certificate (ca.crt in --cert-path)")
    flag("otlp-endpoint", str, None, "export traces to this OTLP gRPC endpoint")
    flag("reject-unknown-models", bool, False, "404 for a model nothing declares (upstream forwards it)")
    flag("default-model", str, None, "model for requests without one (default: the pool's only model)")
    flag("prefix-sync-port", int, None, "serve prefix-index gossip on this port")
    p.add_argument("--prefix-sync-peer", action="append", default=[], help="peer replica host:port")
    flag("prefix-sync-peers-dns", str, None, "headless Service name:port listing peer replicas")
    flag("prefix-sync-redis-url", str, None, "share prefix state via Redis")
    flag("envoy-eds", Path, None, "keep Envoy's endpoint files in this folder in sync with --resources")
    flag("workers", int, 1, "EPP processes sharing the ext_proc port (SO_REUSEPORT); see docs/benchmarks.md")
    flag("event-loop", str, "auto", "asyncio, uvloop, or auto (uvloop when installed)")
    flag("log-level", str, None, "debug, info, warning or error (overrides --v and --zap-log-level)")
    return p


@dataclass
class ParsedFlags:
    command: EPPCommand
    log_level: str
    json_logs: bool
    warnings: list[str] = field(default_factory=list)


def parse(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> ParsedFlags:
    """Raises SystemExit(2) with argparse's one-line message on a bad flag or value."""
    env = os.environ if environ is None else environ
    parser = _parser()
    ns = parser.parse_args(list(argv))
    given = {a.split("=", 1)[0].lstrip("-").replace("_", "-") for a in argv if a.startswith("-")}
    args = vars(ns)
    warnings = [
        f"--{name} is accepted but has no effect here: {why}"
        for name, why in IGNORED.items()
        if name in given
    ]
    if args["metrics_endpoint_auth"]:  # upstream's default; its chart passes =false without auth
        warnings.append(
            "--metrics-endpoint-auth: /metrics is served without authentication (no TokenReview); "
            "pass --metrics-endpoint-auth=false to acknowledge"
        )
    if args["config_file"] and args["config_text"]:
        parser.error("both --config-file and --config-text are set; give one")
    if args["pool_name"] and args["endpoint_selector"]:
        parser.error("either --pool-name or --endpoint-selector must be set, not both")
    if args["endpoint_selector"] and not 1 <= len(args["endpoint_target_ports"]) <= 8:
        parser.error("flag --endpoint-target-ports should have length from 1 to 8")
    scheme = args["model_server_metrics_scheme"]
    if scheme is not None and scheme not in ("http", "https"):
        parser.error(f"unexpected {scheme!r} value for --model-server-metrics-scheme: http or https")
    cmd = _command(args, env)
    return ParsedFlags(cmd, _log_level(args, given), args["zap_encoder"] == "json", warnings)


def _command(args: dict[str, Any], env: Mapping[str, str]) -> EPPCommand:
    a = args
    config_text = a["config_text"]
    if a["config_file"] is not None:
        config_text = Path(str(a["config_file"])).read_text()
    pool_namespace = str(a["pool_namespace"] or env.get("NAMESPACE") or "default")
    tracing_endpoint = a["otlp_endpoint"] or (
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") if a["tracing"] else None
    )
    metric_specs = {signal: a[flag.replace("-", "_")] for flag, signal in METRIC_FLAGS.items()}
    return EPPCommand(
        pool_name=str(a["pool_name"]) or None,
        pool_namespace=pool_namespace,
        pool_group=str(a["pool_group"]),
        endpoint_selector=str(a["endpoint_selector"]) or None,
        endpoint_target_ports=tuple(a["endpoint_target_ports"]),
        resources=a["resources"],
        host=str(a["host"]),
        grpc_port=int(a["grpc_port"]),
        health_port=int(a["grpc_health_port"]),
        metrics_port=int(a["metrics_port"]),
        config_text=config_text,
        kubeconfig=a["kubeconfig"] or env.get("KUBECONFIG") or None,
        leader_election=bool(a["ha_enable_leader_election"]),
        followers_serve=bool(a["followers_serve"]),
        secure_serving=bool(a["secure_serving"]),
        cert_path=a["cert_path"],
        require_client_cert=bool(a["require_client_cert"]),
        otlp_endpoint=tracing_endpoint,
        subset_filter=not a["disable_endpoint_subset_filter"],
        health_checking=bool(a["health_checking"]),
        strict_models=bool(a["reject_unknown_models"]),
        default_model=a["default_model"],
        metrics_scheme=a["model_server_metrics_scheme"],
        metrics_path=a["model_server_metrics_path"],
        metrics_insecure_skip_verify=a["model_server_metrics_https_insecure_skip_verify"],
        scrape_interval_s=a["refresh_metrics_interval"],
        staleness_s=a["metrics_staleness_threshold"],
        scrape_timeout_s=a["metrics_scrape_timeout"],
        metric_specs={k: v for k, v in metric_specs.items() if v is not None},
        prefix_sync_port=a["prefix_sync_port"],
        prefix_sync_peers=tuple(a["prefix_sync_peer"]),
        prefix_sync_peers_dns=a["prefix_sync_peers_dns"],
        prefix_sync_redis_url=a["prefix_sync_redis_url"],
        envoy_eds=a["envoy_eds"],
        workers=int(a["workers"]),
        event_loop=str(a["event_loop"]),
    )


def _log_level(args: dict[str, Any], given: set[str]) -> str:
    if args["log_level"]:
        return str(args["log_level"])
    zap = args["zap_log_level"]
    if zap:
        zap = str(zap).lower()
        if zap.isdigit():
            return "debug" if int(zap) >= DEBUG_VERBOSITY else "info"
        return {"debug": "debug", "info": "info", "warn": "warning", "error": "error"}.get(zap, "info")
    return "debug" if int(args["v"]) >= DEBUG_VERBOSITY else "info"


class JSONFormatter(logging.Formatter):
    """One JSON object per line, as upstream's --zap-encoder=json."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "level": record.levelname.lower(),
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and log.isEnabledFor(logging.DEBUG):
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def use_json_logs() -> None:
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JSONFormatter())
