"""`inference-gateway epp`: the Endpoint Picker as a standalone server, fed by Kubernetes or by files.

This is what the Helm chart runs in a cluster (flags follow upstream's EPP where one exists).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from inference_gateway.epp import EndpointPicker, EPPOptions
from inference_gateway.local.event_loop import has_uvloop, loop_runner
from inference_gateway.observability.tls import TLSFiles, self_signed_credentials, server_credentials
from inference_gateway.observability.tracing import make_provider, otlp_exporter
from inference_gateway.scheduling.prefix_sync import PrefixSyncOptions

log = logging.getLogger(__name__)

EVENT_LOOPS = ("auto", "asyncio", "uvloop")


@dataclass
class EPPCommand:
    pool_name: str | None = None
    pool_namespace: str = "default"
    pool_group: str = "inference.networking.k8s.io"
    # Upstream's standalone mode: pods matching key=value labels on these ports, no InferencePool.
    endpoint_selector: str | None = None
    endpoint_target_ports: tuple[int, ...] = ()
    resources: Path | None = None
    host: str = "0.0.0.0"
    grpc_port: int = 9002
    health_port: int = 9003
    metrics_port: int = 9090
    config_file: Path | None = None
    config_text: str | None = None
    kubeconfig: str | None = None
    leader_election: bool = False
    followers_serve: bool = False
    secure_serving: bool = False
    cert_path: Path | None = None  # tls.crt/tls.key; secure serving without it mints a certificate
    require_client_cert: bool = False
    otlp_endpoint: str | None = None
    subset_filter: bool = True
    health_checking: bool = False
    strict_models: bool = False
    default_model: str | None = None
    metrics_scheme: str | None = None
    metrics_path: str | None = None
    metrics_insecure_skip_verify: bool | None = None
    scrape_interval_s: float | None = None
    staleness_s: float | None = None
    scrape_timeout_s: float | None = None
    metric_specs: dict[str, str] = field(default_factory=dict)
    prefix_sync_port: int | None = None
    prefix_sync_peers: tuple[str, ...] = ()
    prefix_sync_peers_dns: str | None = None
    prefix_sync_redis_url: str | None = None
    envoy_eds: Path | None = None  # folder of Envoy EDS files to keep in sync (files mode)
    workers: int = 1  # processes behind the one ext_proc port (commands/workers.py)
    worker_index: int = 0
    event_loop: str = "auto"  # asyncio, uvloop, or auto (uvloop when installed)

    def validate(self) -> None:
        sources = [self.pool_name, self.endpoint_selector, self.resources]
        if sum(s is not None for s in sources) != 1:
            raise ValueError(
                "give one of --pool-name or --endpoint-selector (Kubernetes) or --resources DIR (files)"
            )
        if self.envoy_eds is not None and self.resources is None:
            raise ValueError("--envoy-eds needs --resources DIR (in Kubernetes, Envoy reads the pods itself)")
        if self.require_client_cert and self.cert_path is None:
            raise ValueError("--require-client-cert needs --cert-path with ca.crt")
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, not {self.workers}")
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError(f"--event-loop must be one of {', '.join(EVENT_LOOPS)}, not {self.event_loop!r}")
        if self.event_loop == "uvloop" and not has_uvloop():
            raise ValueError("--event-loop uvloop: the uvloop package is not installed")

    def scrape_overrides(self) -> dict[str, Any]:
        given = {
            "scheme": self.metrics_scheme,
            "path": self.metrics_path,
            "insecure_skip_verify": self.metrics_insecure_skip_verify,
            "interval_s": self.scrape_interval_s,
            "stale_after_s": self.staleness_s,
            "timeout_s": self.scrape_timeout_s,
        }
        return {k: v for k, v in given.items() if v is not None}

    def options(self) -> EPPOptions:
        config_text = self.config_file.read_text() if self.config_file else self.config_text
        return EPPOptions(
            host=self.host,
            grpc_port=self.grpc_port,
            health_port=self.health_port,
            metrics_port=self.metrics_port,
            config_text=config_text,
            prefix_sync=_prefix_sync_options(self),
            subset_filter=self.subset_filter,
            health_checking=self.health_checking,
            strict_models=self.strict_models,
            default_model=self.default_model,
            scrape_overrides=self.scrape_overrides(),
            metric_specs=self.metric_specs,
            reuse_port=self.workers > 1,
        )

    def credentials(self) -> grpc.ServerCredentials | None:
        if not self.secure_serving:
            return None
        if self.cert_path is None:  # as upstream: a certificate of our own, for TLS without trust
            log.info("secure serving with a certificate minted at start (no --cert-path)")
            return self_signed_credentials(("localhost", "127.0.0.1", socket.gethostname()))
        ca = self.cert_path / "ca.crt" if self.require_client_cert else None
        return server_credentials(TLSFiles(self.cert_path / "tls.crt", self.cert_path / "tls.key", ca))


def run_blocking(cmd: EPPCommand) -> None:
    """`run` on the event loop `--event-loop` names."""
    loop_runner(cmd.event_loop)(run(cmd))


async def run(cmd: EPPCommand) -> None:
    cmd.validate()
    provider = make_provider(otlp_exporter(cmd.otlp_endpoint)) if cmd.otlp_endpoint else None
    epp = EndpointPicker(cmd.options(), tracer_provider=provider)
    credentials = cmd.credentials()
    source = await _start_source(cmd, epp)
    if epp.health_server is not None and hasattr(source, "ready"):
        epp.health_server.ready = source.ready
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    try:
        await epp.start(credentials)
        await stopped.wait()
    finally:
        await epp.stop()
        await source.stop()
        if provider is not None:
            provider.shutdown()


def _prefix_sync_options(cmd: EPPCommand) -> PrefixSyncOptions | None:
    wanted = (
        cmd.workers > 1
        or cmd.prefix_sync_port
        or cmd.prefix_sync_peers
        or cmd.prefix_sync_peers_dns
        or cmd.prefix_sync_redis_url
    )
    if not wanted:
        return None
    tls = None
    if cmd.cert_path is not None:
        tls = TLSFiles(cmd.cert_path / "tls.crt", cmd.cert_path / "tls.key", cmd.cert_path / "ca.crt")
    return PrefixSyncOptions(
        host=cmd.host,
        port=cmd.prefix_sync_port or 9004,
        peers=cmd.prefix_sync_peers,
        peers_dns=cmd.prefix_sync_peers_dns,
        redis_url=cmd.prefix_sync_redis_url,
        tls=tls,
        replica_id=_replica_id(cmd),
    )


def _replica_id(cmd: EPPCommand) -> str:
    pod = os.environ.get("POD_NAME") or os.uname().nodename
    return f"{pod}/worker-{cmd.worker_index}" if cmd.workers > 1 else pod


async def _start_source(cmd: EPPCommand, epp: EndpointPicker):  # type: ignore[no-untyped-def]
    if cmd.resources is not None:
        from inference_gateway.sources.files import FileSource

        files = FileSource(epp.store, cmd.resources)
        if cmd.envoy_eds is not None:
            from inference_gateway.commands.envoy_setup import EndpointFileWriter

            epp.store.on_change(EndpointFileWriter(epp.store, cmd.envoy_eds).write)
        await files.start()
        epp.store.synced = True
        return files
    from inference_gateway.sources.kubernetes import ControllerOptions, KubernetesController

    controller = KubernetesController(
        epp.store,
        ControllerOptions(
            cmd.pool_name or "",
            endpoint_selector=cmd.endpoint_selector,
            endpoint_target_ports=cmd.endpoint_target_ports,
            pool_namespace=cmd.pool_namespace,
            pool_group=cmd.pool_group,
            kube_config=cmd.kubeconfig,
            leader_election=cmd.leader_election,
            identity=os.environ.get("POD_NAME") or os.uname().nodename,
            followers_serve=cmd.followers_serve,
        ),
    )
    await controller.start()
    await controller.wait_synced()
    epp.store.synced = True
    return controller
