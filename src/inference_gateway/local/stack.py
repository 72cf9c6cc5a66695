"""`inference-gateway up`: simulated pods + EPP + a real Envoy, all on loopback, in one process tree."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from inference_gateway.api.manifests import ResourceSet, load_yaml_documents, parse_objects
from inference_gateway.api.types import FailureMode
from inference_gateway.envoy.bootstrap import EnvoyConfig
from inference_gateway.envoy.process import EnvoyProcess
from inference_gateway.epp import EndpointPicker, EPPOptions
from inference_gateway.local.fleet import LocalFleet, LocalPod, SimulatorProcesses, local_pods, parse_fleet
from inference_gateway.observability.tls import LocalPKI, mint_local_pki, server_credentials

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


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
    # EnvoyConfig fields to override (tests: short route/idle timeouts, buffer limits).
    envoy_overrides: dict[str, Any] = field(default_factory=dict)


def load_directory(path: Path) -> tuple[ResourceSet, list[dict]]:
    """Parse every *.yaml / *.yml file in `path` (sorted); return resources and raw objects."""
    resources = ResourceSet()
    raw: list[dict] = []
    files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
    for file in files:
        docs = [d for d in load_yaml_documents(file.read_text(), str(file)) if d is not None]
        resources.extend(parse_objects(docs, str(file)))
        raw.extend(d for d in docs if isinstance(d, dict))
    return resources, raw


def _pick(option: int | None, default: int) -> int:
    return default if option is None else option


class LocalStack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.resources, raw = load_directory(options.config_dir)
        self.fleet: LocalFleet = parse_fleet(raw, str(options.config_dir))
        if options.time_scale is not None:
            for group in self.fleet.groups:
                group.setdefault("simulator", {})["timeScale"] = options.time_scale
        ports = {p.ref.name: p.target_ports for p in self.resources.pools}
        self.pods: list[LocalPod] = local_pods(self.fleet, ports)
        self.simulators = SimulatorProcesses()
        self.epp: EndpointPicker | None = None
        self.envoy: EnvoyProcess | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="inference-gateway-"))
        self.gateway_port = options.gateway_port or self.fleet.gateway_port
        self.pki: LocalPKI | None = None
        self._epp_credentials: grpc.ServerCredentials | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/v1"

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
        epp = await self._start_epp(_pick(self.options.epp_port, self.fleet.epp_port))
        self.envoy = EnvoyProcess(
            self._envoy_config(epp.port), self.workdir, log_level=self.options.envoy_log_level
        )
        await self.envoy.start([e.address for e in epp.store.endpoints()])
        self._follow_endpoints(epp)

    async def _start_epp(self, grpc_port: int) -> EndpointPicker:
        self.epp = epp = EndpointPicker(
            EPPOptions(
                grpc_port=grpc_port,
                metrics_port=_pick(self.options.metrics_port, self.fleet.metrics_port),
                health_port=_pick(self.options.health_port, 9003),
                config_text=self.options.epp_config,
            )
        )
        epp.store.replace_all(self._all_resources())
        epp.store.synced = True
        await epp.start(self._epp_credentials)
        await epp.scraper.scrape_once()
        return epp

    def _follow_endpoints(self, epp: EndpointPicker) -> None:
        envoy = self.envoy
        assert envoy is not None
        epp.store.on_change(lambda: envoy.update_endpoints([e.address for e in epp.store.endpoints()]))

    async def restart_epp(self, downtime_s: float = 0.0, grace_s: float = 1.0) -> None:
        """Stop the EPP (in-flight ext_proc streams get `grace_s` to finish), wait, and start a
        fresh one with empty state on the same port, as a rolling restart of one replica would."""
        assert self.epp is not None
        port = self.epp.port
        await self.epp.stop(grace_s)
        self.epp = None
        await asyncio.sleep(downtime_s)
        self._follow_endpoints(await self._start_epp(port))

    def _all_resources(self) -> ResourceSet:
        merged = ResourceSet()
        merged.extend(self.resources)
        merged.pods += [dataclasses.replace(lp.pod, ready=True) for lp in self.pods]
        return merged

    def _envoy_config(self, epp_port: int) -> EnvoyConfig:
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
            epp_host="127.0.0.1",
        )
        return dataclasses.replace(config, **self.options.envoy_overrides)

    async def stop(self) -> None:
        if self.envoy is not None:
            await self.envoy.stop()
        if self.epp is not None:
            await self.epp.stop()
        await self.simulators.stop()

    async def run_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(self.stop())
