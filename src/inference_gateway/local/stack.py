"""`inference-gateway up`: simulated pods + EPP + a real Envoy, all on loopback, in one process tree."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from inference_gateway.api.errors import FieldError, ManifestError
from inference_gateway.api.manifests import ResourceSet, load_path
from inference_gateway.api.types import AppProtocol, FailureMode, ObjectRef
from inference_gateway.envoy.bootstrap import EnvoyConfig, PoolCluster
from inference_gateway.envoy.httproute import RouteRule, parse_httproutes, referenced_pools
from inference_gateway.envoy.process import EnvoyProcess
from inference_gateway.epp import EndpointPicker, EPPOptions
from inference_gateway.local.fleet import FLEET_KIND, LocalFleet, LocalPod, local_pods, parse_fleet
from inference_gateway.local.supervisor import SimulatorProcesses
from inference_gateway.observability.tls import (
    LocalPKI,
    mint_local_pki,
    self_signed_credentials,
    server_credentials,
)
from inference_gateway.scheduling.config import load_config
from inference_gateway.sources.files import FileSource

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, for a child that must be told its port before it binds.

    Drawn below the kernel's ephemeral range: a port from bind(0) is one the kernel hands out
    again to the next outgoing connection, often before the child gets to bind it."""
    low = _ephemeral_range_start()
    draw = random.Random()
    for _ in range(64):
        port = draw.randrange(10_000, low)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _ephemeral_range_start() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(low, 10_001)


@dataclass
class StackOptions:
    config_dir: Path
    gateway_port: int | None = None
    epp_port: int | None = None
    epp_config: str | None = None
    time_scale: float | None = None
    envoy_log_level: str = "warning"
    metrics_port: int | None = None
    health_port: int | None = None
    use_epp: bool = True  # False: Envoy round robin only (the Kubernetes Service baseline)
    tls: bool = False  # mTLS between Envoy and the EPP, with certificates minted for this run
    keep_workdir: bool = False  # leave Envoy's config and log and the certificates behind on stop
    # Restart a simulated pod that exits (with backoff), as a kubelet would; `up` does. Exits
    # are reported, and the pod is not ready until it answers again, either way.
    restart_pods: bool = False
    epp_config_source: str = "--epp-config"  # how errors in epp_config name it
    # EnvoyConfig fields to override (tests: short route/idle timeouts, buffer limits).
    envoy_overrides: dict[str, Any] = field(default_factory=dict)
    # ScrapeConfig fields that beat the EndpointPickerConfig (up's --refresh-metrics-interval...).
    scrape_overrides: dict[str, Any] = field(default_factory=dict)


def load_directory(path: Path) -> tuple[ResourceSet, list[dict]]:
    """Load `path` with the EPP's loader (every YAML file below it); return the resources and
    the other objects (LocalFleet, HTTPRoute, ...).

    HTTPRoutes among them are checked too (supported fields, backendRefs to known pools)."""
    resources = load_path(path)
    raw = list(resources.other)
    _check_routed_pools(parse_httproutes(raw, str(path)), resources)
    return resources, raw


def _check_routed_pools(rules: list[RouteRule], resources: ResourceSet) -> list[ObjectRef]:
    known = {p.ref for p in resources.pools}
    routed = referenced_pools(rules)
    missing = [ref for ref in routed if ref not in known]
    if missing:
        errors = [FieldError("backendRefs", f"no InferencePool {ref} in the config") for ref in missing]
        raise ManifestError("config", "HTTPRoute", errors)
    return routed


def _pick(option: int | None, default: int) -> int:
    return default if option is None else option


class LocalStack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.resources, raw = load_directory(options.config_dir)
        self.fleet: LocalFleet = parse_fleet(raw, str(options.config_dir))
        # HTTPRoutes to InferencePools make the gateway multi-pool: a cluster per routed pool.
        self.rules: list[RouteRule] = parse_httproutes(raw, str(options.config_dir))
        self.routed_pools = _check_routed_pools(self.rules, self.resources)
        self.pods: list[LocalPod] = self._fleet_pods(self.fleet, self.resources)
        self.simulators = SimulatorProcesses(options.restart_pods, on_change=self._pods_changed)
        self._reconciling: asyncio.Task[None] | None = None
        self.epp: EndpointPicker | None = None
        self.envoy: EnvoyProcess | None = None
        # Checked now, so a bad config fails before any pod starts (the EPP builds its own copy).
        load_config(options.epp_config, source=options.epp_config_source)
        self.gateway_port = _pick(options.gateway_port, self.fleet.gateway_port)
        self.workdir = Path(tempfile.mkdtemp(prefix="inference-gateway-"))
        self.pki: LocalPKI | None = None
        self.files: FileSource | None = None
        self._epp_credentials: grpc.ServerCredentials | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/v1"

    @property
    def status_url(self) -> str:
        port = self.epp.metrics_server.port if self.epp and self.epp.metrics_server else 0
        return f"http://127.0.0.1:{port}/"

    def listen_ports(self) -> dict[str, int]:
        """The fixed ports this stack will listen on, by the `up` flag that sets each."""
        return {
            "--port": self.gateway_port,
            "--epp-port": _pick(self.options.epp_port, self.fleet.epp_port),
            "--metrics-port": _pick(self.options.metrics_port, self.fleet.metrics_port),
            "--health-port": _pick(self.options.health_port, self.fleet.health_port),
        }

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        await self.simulators.start(self.pods)
        await self.simulators.wait_healthy(self.pods)
        if self.options.tls:
            self.pki = mint_local_pki(self.workdir / "pki")
            self._epp_credentials = server_credentials(self.pki.server)
        else:  # secure serving by default, as the EPP command (and upstream's EPP)
            self._epp_credentials = self_signed_credentials()
        epp = await self._start_epp(_pick(self.options.epp_port, self.fleet.epp_port))
        config = self._envoy_config(epp.port, response_phases(epp))
        self.envoy = EnvoyProcess(config, self.workdir, log_level=self.options.envoy_log_level)
        self._publish_endpoints()
        await self.envoy.start([e.address for e in epp.store.endpoints()])
        self.gateway_port = self.envoy.listen_port

    async def _start_epp(self, grpc_port: int) -> EndpointPicker:
        self.epp = epp = EndpointPicker(
            EPPOptions(
                grpc_port=grpc_port,
                metrics_port=_pick(self.options.metrics_port, self.fleet.metrics_port),
                health_port=_pick(self.options.health_port, self.fleet.health_port),
                config_text=self.options.epp_config,
                pool_configs=self._pool_configs(),
                scrape_overrides=self.options.scrape_overrides,
            )
        )
        # The YAML directory stays live: edits (weights, criticality, pods) apply within ~0.1 s.
        self.files = FileSource(epp.store, self.options.config_dir, transform=self._with_local_pods)
        await self.files.start()
        epp.store.synced = True
        epp.store.on_change(self._publish_endpoints)
        await epp.start(self._epp_credentials)
        await epp.scraper.scrape_once()
        return epp

    async def restart_epp(self, downtime_s: float = 0.0, grace_s: float = 1.0) -> None:
        """Stop the EPP (in-flight ext_proc streams get `grace_s` to finish), wait, and start a
        fresh one with empty state on the same port, as a rolling restart of one replica would."""
        assert self.epp is not None
        port = self.epp.port
        if self.files is not None:
            await self.files.stop()
            self.files = None
        await self.epp.stop(grace_s)
        self.epp = None
        await asyncio.sleep(downtime_s)
        await self._start_epp(port)

    def _publish_endpoints(self) -> None:
        """Write Envoy's EDS file(s) from the datastore: one per routed pool, or one for all."""
        if self.envoy is None or self.epp is None:
            return
        store = self.epp.store
        if self.routed_pools:
            self.envoy.update_pools({v.pool.ref: [e.address for e in v.endpoints] for v in store.pools()})
        else:
            self.envoy.update_endpoints([e.address for e in store.endpoints()])

    def _pool_configs(self) -> dict[str, str]:
        """LocalFleet spec.epp.poolConfigs: a path (relative to the config dir) or inline YAML."""
        out: dict[str, str] = {}
        base = self.options.config_dir if self.options.config_dir.is_dir() else self.options.config_dir.parent
        for pool, value in self.fleet.pool_configs.items():
            out[pool] = value if "\n" in value else (base / value).read_text()
        return out

    def _fleet_pods(self, fleet: LocalFleet, resources: ResourceSet) -> list[LocalPod]:
        if self.options.time_scale is not None:
            for group in fleet.groups:
                group.setdefault("simulator", {})["timeScale"] = self.options.time_scale
        return local_pods(fleet, {p.ref.name: p.target_ports for p in resources.pools})

    def _with_local_pods(self, resources: ResourceSet) -> ResourceSet:
        """The files' resources plus the simulated pods, each ready while its process serves.

        A changed LocalFleet (replicas, a new group) starts and stops pods to match."""
        self._follow_fleet(resources)
        merged = ResourceSet()
        merged.extend(resources)
        merged.pods += [dataclasses.replace(lp.pod, ready=self.simulators.pod_ready(lp)) for lp in self.pods]
        return merged

    def _follow_fleet(self, resources: ResourceSet) -> None:
        source = str(self.options.config_dir)
        try:
            pods = self._fleet_pods(parse_fleet(resources.other, source), resources)
        except (ManifestError, TypeError, ValueError) as exc:
            log.error("LocalFleet is invalid; keeping the running pods: %s", exc)
            return
        if [lp.addresses for lp in pods] == [lp.addresses for lp in self.pods] or not any(
            o.get("kind") == FLEET_KIND for o in resources.other
        ):
            return
        log.info("LocalFleet changed: %d -> %d simulated pods", len(self.pods), len(pods))
        self.pods = pods
        previous = self._reconciling

        async def reconcile() -> None:
            if previous is not None:
                await previous
            await self.simulators.reconcile(pods)

        self._reconciling = asyncio.create_task(reconcile(), name="fleet-reconcile")

    def _pods_changed(self) -> None:
        """A simulated pod became ready or exited: apply the files again with its new state."""
        if self.files is not None:
            self.files.refresh()

    def _envoy_config(self, epp_port: int, phases: str = "access-log") -> EnvoyConfig:
        modes = {p.endpoint_picker.failure_mode for p in self.resources.pools}
        mode = FailureMode.FAIL_OPEN if modes == {FailureMode.FAIL_OPEN} else FailureMode.FAIL_CLOSE
        tls = None
        if self.pki is not None:
            tls = {
                "ca": str(self.pki.ca),
                "cert": str(self.pki.client_cert),
                "key": str(self.pki.client_key),
                "sni": "localhost",
            }
        config = EnvoyConfig(
            listen_port=self.gateway_port,
            epp_port=epp_port,
            failure_mode=mode,
            use_epp=self.options.use_epp,
            epp_tls=tls,
            epp_tls_unverified=True,
            epp_host="127.0.0.1",
            pools=self.pool_clusters(),
            rules=tuple(self.rules),
            response_phases=phases,
        )
        return dataclasses.replace(config, **self.options.envoy_overrides)

    def pool_clusters(self) -> tuple[PoolCluster, ...]:
        modes = {p.ref: p.endpoint_picker.failure_mode for p in self.resources.pools}
        h2c = {p.ref for p in self.resources.pools if p.app_protocol == AppProtocol.H2C}
        xds = self.workdir / "xds"
        return tuple(
            PoolCluster(ref, str(xds / f"eds-{ref.namespace}-{ref.name}.yaml"), modes[ref], ref in h2c)
            for ref in self.routed_pools
        )

    async def stop(self) -> None:
        if self.files is not None:
            await self.files.stop()
            self.files = None
        if self._reconciling is not None:
            self._reconciling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciling
        if self.envoy is not None:
            await self.envoy.stop()
        if self.epp is not None:
            await self.epp.stop()
        await self.simulators.stop()
        if not self.options.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def response_phases(epp: EndpointPicker) -> str:
    """ "send" when a plugin adds response headers (session affinity) or ends streams (gateway
    preemption): only a response phase on the critical path can; otherwise the response is
    reported off it by Envoy's access log."""
    wanted = any(r.adds_response_headers or r.preemption is not None for r in epp.runtimes)
    return "send" if wanted else "access-log"
