"""LocalFleet: simulated model-server pods that `inference-gateway up` runs on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from inference_gateway.api.errors import FieldError, ManifestError
from inference_gateway.api.types import ObjectRef, Pod
from inference_gateway.local.children import dies_with_parent

log = logging.getLogger(__name__)

FLEET_KIND = "LocalFleet"


@dataclass
class SimulatorSpec:
    model: str = "meta-llama/Llama-2-7b-hf"
    loras: list[str] = field(default_factory=list)
    profile: str = "h100-llama2-7b"
    metrics_flavor: str = "vllm"
    time_scale: float = 1.0
    extra_args: list[str] = field(default_factory=list)


@dataclass
class LocalPod:
    pod: Pod
    ports: tuple[int, ...]
    simulator: SimulatorSpec

    @property
    def addresses(self) -> list[str]:
        return [f"{self.pod.ip}:{p}" for p in self.ports]


@dataclass
class LocalFleet:
    gateway_port: int = 8081
    epp_port: int = 9002
    metrics_port: int = 9090
    health_port: int = 9003
    groups: list[dict[str, Any]] = field(default_factory=list)
    # spec.epp.poolConfigs: pool ("namespace/name" or name) -> EndpointPickerConfig file
    # (relative to the config directory) or inline YAML.
    pool_configs: dict[str, str] = field(default_factory=dict)


def parse_fleet(objects: list[dict[str, Any]], source: str = "fleet") -> LocalFleet:
    fleets = [o for o in objects if o.get("kind") == FLEET_KIND]
    if len(fleets) > 1:
        raise ManifestError(source, FLEET_KIND, [FieldError("", "only one LocalFleet may be defined")])
    if not fleets:
        return LocalFleet()
    spec = fleets[0].get("spec") or {}
    fleet = LocalFleet(
        gateway_port=int(spec.get("gateway", {}).get("port", 8081)),
        epp_port=int(spec.get("epp", {}).get("port", 9002)),
        metrics_port=int(spec.get("epp", {}).get("metricsPort", 9090)),
        health_port=int(spec.get("epp", {}).get("healthPort", 9003)),
        groups=list(spec.get("pods") or []),
        pool_configs={str(k): str(v) for k, v in (spec.get("epp", {}).get("poolConfigs") or {}).items()},
    )
    for i, group in enumerate(fleet.groups):
        for key in ("pool", "replicas", "labels"):
            if key not in group:
                raise ManifestError(source, f"LocalFleet spec.pods[{i}]", [FieldError(key, "is required")])
    return fleet


def local_pods(
    fleet: LocalFleet, pool_ports: dict[str, tuple[int, ...]], namespace: str = "default"
) -> list[LocalPod]:
    pods: list[LocalPod] = []
    for i, group in enumerate(fleet.groups):
        ports = pool_ports.get(group["pool"])
        if ports is None:
            raise ManifestError(
                "fleet",
                f"LocalFleet spec.pods[{i}]",
                [FieldError("pool", f"no InferencePool named {group['pool']!r}")],
            )
        base = ipaddress.IPv4Address(group.get("addressBase", f"127.0.{i + 1}.1"))
        sim = group.get("simulator") or {}
        spec = SimulatorSpec(
            model=sim.get("model", SimulatorSpec.model),
            loras=list(sim.get("loras") or []),
            profile=sim.get("profile", SimulatorSpec.profile),
            metrics_flavor=sim.get("metricsFlavor", "vllm"),
            time_scale=float(sim.get("timeScale", 1.0)),
            extra_args=[str(a) for a in sim.get("args") or []],
        )
        labels = {str(k): str(v) for k, v in group["labels"].items()}
        if spec.metrics_flavor != "vllm":
            labels.setdefault("inference.networking.k8s.io/engine-type", spec.metrics_flavor)
        prefix = group.get("namePrefix", group["pool"])
        for r in range(int(group["replicas"])):
            ref = ObjectRef(namespace, f"{prefix}-{r}")
            pods.append(LocalPod(Pod(ref, str(base + r), labels, ready=False), ports, spec))
    return pods


class SimulatorProcesses:
    """One `inference-gateway simulate` child process per simulated pod port."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, pods: list[LocalPod]) -> None:
        for lp in pods:
            for port in lp.ports:
                self.procs.append(await self._spawn(lp, port))

    async def _spawn(self, lp: LocalPod, port: int) -> asyncio.subprocess.Process:
        s = lp.simulator
        args = [
            sys.executable,
            "-m",
            "inference_gateway.cli",
            "simulate",
            "--host",
            lp.pod.ip,
            "--port",
            str(port),
            "--model",
            s.model,
            "--profile",
            s.profile,
            "--metrics-flavor",
            s.metrics_flavor,
            "--time-scale",
            str(s.time_scale),
            "--pod-name",
            lp.pod.ref.name,
            "--pod-namespace",
            lp.pod.ref.namespace,
        ]
        for lora in s.loras:
            args += ["--lora", lora]
        args += s.extra_args
        return await asyncio.create_subprocess_exec(*dies_with_parent(args), stdin=asyncio.subprocess.DEVNULL)

    async def wait_healthy(self, pods: list[LocalPod], timeout_s: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        pending = [a for lp in pods for a in lp.addresses]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while pending:
                if loop.time() > deadline:
                    raise RuntimeError(f"simulated pods not healthy after {timeout_s}s: {pending}")
                dead = [p for p in self.procs if p.returncode is not None]
                if dead:
                    raise RuntimeError(f"a simulator exited with status {dead[0].returncode}")
                pending = [a for a in pending if not await _healthy(session, a)]
                if pending:
                    await asyncio.sleep(0.1)

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _healthy(session: aiohttp.ClientSession, address: str) -> bool:
    try:
        async with session.get(f"http://{address}/health") as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False
