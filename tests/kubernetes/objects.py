"""Builders for the Kubernetes objects the tests script."""

from __future__ import annotations

from typing import Any

NS = "inference"
POOL_API = "inference.networking.k8s.io/v1"
X_API = "inference.networking.x-k8s.io/v1alpha2"


def pool(
    name: str = "llm", app: str = "vllm", ports: tuple[int, ...] = (8000,), epp: str = "llm-epp"
) -> dict[str, Any]:
    return {
        "apiVersion": POOL_API,
        "kind": "InferencePool",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": app}},
            "targetPorts": [{"number": p} for p in ports],
            "endpointPickerRef": {"name": epp, "port": {"number": 9002}},
        },
    }


def pod(name: str, ip: str, app: str = "vllm", ready: bool = True, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": app, **labels}},
        "spec": {"containers": [{"name": "server", "image": "vllm/vllm-openai"}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def model(
    name: str, model_name: str, pool_name: str = "llm", created: str = "2025-01-01T00:00:00Z"
) -> dict[str, Any]:
    return {
        "apiVersion": X_API,
        "kind": "InferenceModel",
        "metadata": {"name": name, "namespace": NS, "creationTimestamp": created},
        "spec": {"modelName": model_name, "poolRef": {"name": pool_name}, "criticality": "Standard"},
    }


def objective(name: str, priority: int, pool_name: str = "llm") -> dict[str, Any]:
    return {
        "apiVersion": X_API,
        "kind": "InferenceObjective",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"priority": priority, "poolRef": {"name": pool_name}},
    }


def rewrite(name: str, match: str, target: str, pool_name: str = "llm") -> dict[str, Any]:
    return {
        "apiVersion": X_API,
        "kind": "InferenceModelRewrite",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "poolRef": {"name": pool_name},
            "rules": [{"matches": [{"model": {"value": match}}], "targets": [{"modelRewrite": target}]}],
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"ports": [{"name": "grpc-ext-proc", "port": 9002}]},
    }


def route(name: str, gateway: str, pool_name: str = "llm", accepted: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "parentRefs": [{"name": gateway}],
            "rules": [
                {
                    "backendRefs": [
                        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": pool_name}
                    ]
                }
            ],
        },
    }
    if accepted is not None:
        obj["status"] = {
            "parents": [
                {
                    "parentRef": {"name": gateway},
                    "controllerName": "example.com/gateway",
                    "conditions": [{"type": "Accepted", "status": accepted, "reason": "Accepted"}],
                }
            ]
        }
    return obj
