"""LocalFleet: simulated model-server pods that `inference-gateway up` runs on loopback."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any

from inference_gateway.api.errors import FieldError, ManifestError
from inference_gateway.api.types import ObjectRef, Pod

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
