"""Pool resources for benchmarks that run the EPP against backends the harness starts itself."""

from __future__ import annotations

import random

from inference_gateway.api.manifests import ResourceSet, parse_yaml
from inference_gateway.api.types import ObjectRef
from inference_gateway.datastore.endpoint import Endpoint, EndpointMetrics

POOL_NAME = "bench-pool"
APP_LABEL = "bench"


def pod_ips(count: int, subnet: int) -> list[str]:
    """Loopback addresses 127.<subnet>.<hi>.<lo>, one per pod (the whole 127/8 is local)."""
    return [f"127.{subnet}.{1 + i // 250}.{1 + i % 250}" for i in range(count)]


def pool_resources(ips: list[str], port: int, models: dict[str, str] | None = None) -> ResourceSet:
    """An InferencePool over `ips`:`port`, ready Pods, and InferenceModels {name: criticality}."""
    return parse_yaml(pool_yaml(ips, port, models), "bench-pool")


def pool_yaml(ips: list[str], port: int, models: dict[str, str] | None = None) -> str:
    """`pool_resources` as YAML text (for an EPP started with --resources)."""
    models = models or {"meta-llama/Llama-2-7b-hf": "Standard"}
    docs = [
        f"""apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {{name: {POOL_NAME}}}
spec:
  selector: {{matchLabels: {{app: {APP_LABEL}}}}}
  targetPorts: [{{number: {port}}}]
  endpointPickerRef: {{name: epp, port: {{number: 9002}}}}
"""
    ]
    for i, (name, criticality) in enumerate(models.items()):
        docs.append(
            f"""apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {{name: model-{i}}}
spec: {{modelName: "{name}", criticality: {criticality}, poolRef: {{name: {POOL_NAME}}}}}
"""
        )
    for i, ip in enumerate(ips):
        docs.append(
            f"""apiVersion: v1
kind: Pod
metadata: {{name: pod-{i}, labels: {{app: {APP_LABEL}}}}}
status: {{podIP: {ip}, conditions: [{{type: Ready, status: 'True'}}]}}
"""
        )
    return "---\n".join(docs)


def synthetic_endpoints(count: int, seed: int = 0, adapters: int = 8) -> list[Endpoint]:
    """Endpoints with random but plausible engine state, for timing scheduling decisions."""
    rng = random.Random(seed)
    names = [f"lora-{i}" for i in range(adapters)]
    out: list[Endpoint] = []
    for i in range(count):
        ep = Endpoint(f"pod-{i}", ObjectRef("default", f"pod-{i}"), f"10.{i // 250}.{i % 250}.1", 8000, {})
        ep.metrics = EndpointMetrics(
            waiting_queue=rng.randint(0, 20),
            running_requests=rng.randint(0, 256),
            kv_cache_usage=rng.random(),
            active_adapters=frozenset(rng.sample(names, 2)),
            max_active_adapters=4,
            served_models=frozenset({"meta-llama/Llama-2-7b-hf"}),
            updated_at=1.0,
        )
        out.append(ep)
    return out
