"""`inference-gateway epp`: the Endpoint Picker as a standalone server, fed by Kubernetes or by files.

This is what the Helm chart runs in a cluster (flags follow upstream's EPP where one exists).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from inference_gateway.epp import EndpointPicker, EPPOptions
from inference_gateway.observability.tls import TLSFiles, server_credentials
from inference_gateway.observability.tracing import make_provider, otlp_exporter
from inference_gateway.scheduling.prefix_sync import PrefixSyncOptions

log = logging.getLogger(__name__)


@dataclass
class EPPCommand:
    pool_name: str | None = None
    pool_namespace: str = "default"
    pool_group: str = "inference.networking.k8s.io"
    resources: Path | None = None
    host: str = "0.0.0.0"
    grpc_port: int = 9002
    health_port: int = 9003
    metrics_port: int = 9090
    config_file: Path | None = None
    kubeconfig: str | None = None
    leader_election: bool = False
    followers_serve: bool = False
    cert_path: Path | None = None
    require_client_cert: bool = False
    otlp_endpoint: str | None = None
    prefix_sync_port: int | None = None
    prefix_sync_peers: tuple[str, ...] = ()
    prefix_sync_peers_dns: str | None = None
    prefix_sync_redis_url: str | None = None
    envoy_eds: Path | None = None  # folder of Envoy EDS files to keep in sync (files mode)

    def validate(self) -> None:
        if (self.pool_name is None) == (self.resources is None):
            raise ValueError("give either --pool-name (Kubernetes) or --resources DIR (files), not both")
        if self.envoy_eds is not None and self.resources is None:
            raise ValueError("--envoy-eds needs --resources DIR (in Kubernetes, Envoy reads the pods itself)")


async def run(cmd: EPPCommand) -> None:
    cmd.validate()
    provider = make_provider(otlp_exporter(cmd.otlp_endpoint)) if cmd.otlp_endpoint else None
    options = EPPOptions(
        host=cmd.host,
        grpc_port=cmd.grpc_port,
        health_port=cmd.health_port,
        metrics_port=cmd.metrics_port,
        config_text=cmd.config_file.read_text() if cmd.config_file else None,
        prefix_sync=_prefix_sync_options(cmd),
    )
    epp = EndpointPicker(options, tracer_provider=provider)
    source = await _start_source(cmd, epp)
    if epp.health_server is not None and hasattr(source, "ready"):
        epp.health_server.ready = source.ready
    credentials = None
    if cmd.cert_path is not None:
        ca = cmd.cert_path / "ca.crt" if cmd.require_client_cert else None
        credentials = server_credentials(TLSFiles(cmd.cert_path / "tls.crt", cmd.cert_path / "tls.key", ca))
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
        cmd.prefix_sync_port
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
        replica_id=os.environ.get("POD_NAME") or os.uname().nodename,
    )


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

    assert cmd.pool_name is not None
    controller = KubernetesController(
        epp.store,
        ControllerOptions(
            cmd.pool_name,
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
