"""Valid objects of every kind, and one failing example per validation rule.

Shared by the parser tests (the exact message) and the CRD tests (the CRD schema must reject the
same example wherever a schema can express the rule).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

POOL_V1: dict[str, Any] = {
    "apiVersion": "inference.networking.k8s.io/v1",
    "kind": "InferencePool",
    "metadata": {"name": "pool", "namespace": "default"},
    "spec": {
        "selector": {"matchLabels": {"app": "vllm"}},
        "targetPorts": [{"number": 8000}],
        "endpointPickerRef": {"name": "pool-epp", "port": {"number": 9002}},
    },
}
POOL_V1ALPHA2: dict[str, Any] = {
    "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
    "kind": "InferencePool",
    "metadata": {"name": "legacy"},
    "spec": {"selector": {"app": "vllm"}, "targetPortNumber": 8000, "extensionRef": {"name": "legacy-epp"}},
}
MODEL: dict[str, Any] = {
    "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
    "kind": "InferenceModel",
    "metadata": {"name": "food-review"},
    "spec": {
        "modelName": "food-review",
        "criticality": "Critical",
        "poolRef": {"name": "pool"},
        "targetModels": [{"name": "food-review-1", "weight": 90}, {"name": "food-review-2", "weight": 10}],
    },
}
OBJECTIVE: dict[str, Any] = {
    "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
    "kind": "InferenceObjective",
    "metadata": {"name": "interactive"},
    "spec": {"priority": 10, "poolRef": {"group": "inference.networking.k8s.io", "name": "pool"}},
}
REWRITE: dict[str, Any] = {
    "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
    "kind": "InferenceModelRewrite",
    "metadata": {"name": "chat"},
    "spec": {
        "poolRef": {"name": "pool"},
        "rules": [
            {
                "matches": [{"model": {"type": "Exact", "value": "chat"}}],
                "targets": [
                    {"modelRewrite": "chat-v1", "weight": 3},
                    {"modelRewrite": "chat-v2", "weight": 1},
                ],
            }
        ],
    },
}
POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "vllm-0", "labels": {"app": "vllm"}},
    "status": {"podIP": "127.0.0.5", "conditions": [{"type": "Ready", "status": "True"}]},
}

VALID = [POOL_V1, POOL_V1ALPHA2, MODEL, OBJECTIVE, REWRITE, POD]


@dataclass(frozen=True)
class Case:
    id: str
    base: dict[str, Any]
    mutate: Callable[[dict[str, Any]], None]
    message: str
    crd_rejects: bool  # False where only the gateway (or the API server itself) can check the rule

    def object(self) -> dict[str, Any]:
        obj = copy.deepcopy(self.base)
        self.mutate(obj)
        return obj


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _del(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return mutate


def _ports(n: int) -> list[dict[str, int]]:
    return [{"number": 8000 + i} for i in range(n)]


def _labels(n: int) -> dict[str, str]:
    return {f"k{i}": "v" for i in range(n)}


def _targets(n: int) -> list[dict[str, Any]]:
    return [{"name": f"t{i}", "weight": 1} for i in range(n)]


P = "InferencePool default/pool"
PA = "InferencePool default/legacy"
M = "InferenceModel default/food-review"
O = "InferenceObjective default/interactive"  # noqa: E741
R = "InferenceModelRewrite default/chat"

# fmt: off
CASES = [
    # --- every object ---------------------------------------------------------------------
    Case("name-invalid", POOL_V1, _set("metadata.name", "Pool_1"),
         "InferencePool default/Pool_1: metadata.name: 'Pool_1' is not a valid name", False),
    Case("name-missing", MODEL, _del("metadata.name"),
         "InferenceModel default/<unnamed>: metadata.name: is required", False),
    Case("namespace-invalid", MODEL, _set("metadata.namespace", "Team.A"),
         "metadata.namespace: 'Team.A' is not a valid namespace", False),
    Case("api-version-unsupported", POOL_V1, _set("apiVersion", "inference.networking.k8s.io/v2"),
         f"{P}: apiVersion: 'inference.networking.k8s.io/v2' is not supported for InferencePool; use "
         "inference.networking.k8s.io/v1 or inference.networking.x-k8s.io/v1alpha2", False),
    Case("spec-missing", MODEL, _del("spec"),
         f"{M}: spec: is required", True),
    Case("created-invalid", MODEL, _set("metadata.creationTimestamp", "yesterday"),
         f"{M}: metadata.creationTimestamp: 'yesterday' is not an RFC 3339 time", False),
    # --- InferencePool v1 -------------------------------------------------------------------
    Case("pool-selector-missing", POOL_V1, _del("spec.selector"),
         f"{P}: spec.selector.matchLabels: is required", True),
    Case("pool-selector-empty", POOL_V1, _set("spec.selector.matchLabels", {}),
         f"{P}: spec.selector.matchLabels: must have 1-64 labels, has 0", True),
    Case("pool-selector-too-many", POOL_V1, _set("spec.selector.matchLabels", _labels(65)),
         f"{P}: spec.selector.matchLabels: must have 1-64 labels, has 65", True),
    Case("pool-label-value", POOL_V1, _set("spec.selector.matchLabels", {"app": "-vllm-"}),
         f"{P}: spec.selector.matchLabels[app]: '-vllm-' is not a valid label value", True),
    Case("pool-label-value-type", POOL_V1, _set("spec.selector.matchLabels", {"gpu": True}),
         f"{P}: spec.selector.matchLabels[gpu]: label values must be strings, got bool (quote it)", True),
    Case("pool-label-key", POOL_V1, _set("spec.selector.matchLabels", {"my app": "vllm"}),
         f"{P}: spec.selector.matchLabels[my app]: 'my app' is not a valid label key", False),
    Case("pool-ports-missing", POOL_V1, _del("spec.targetPorts"),
         f"{P}: spec.targetPorts: is required", True),
    Case("pool-ports-empty", POOL_V1, _set("spec.targetPorts", []),
         f"{P}: spec.targetPorts: must list 1-8 ports, lists 0", True),
    Case("pool-ports-too-many", POOL_V1, _set("spec.targetPorts", _ports(9)),
         f"{P}: spec.targetPorts: must list 1-8 ports, lists 9", True),
    Case("pool-port-range", POOL_V1, _set("spec.targetPorts", [{"number": 70000}]),
         f"{P}: spec.targetPorts[0].number: 70000 must be an integer from 1 to 65535", True),
    Case("pool-port-number-missing", POOL_V1, _set("spec.targetPorts", [{"port": 8000}]),
         f"{P}: spec.targetPorts[0].number: is required", True),
    Case("pool-ports-unique", POOL_V1, _set("spec.targetPorts", [{"number": 8000}, {"number": 8000}]),
         f"{P}: spec.targetPorts: port numbers must be unique; repeated: 8000", True),
    Case("pool-app-protocol", POOL_V1, _set("spec.appProtocol", "grpc"),
         f"{P}: spec.appProtocol: 'grpc' must be one of http, kubernetes.io/h2c", True),
    Case("pool-epp-name", POOL_V1, _del("spec.endpointPickerRef.name"),
         f"{P}: spec.endpointPickerRef.name: is required", True),
    Case("pool-epp-port-required", POOL_V1, _del("spec.endpointPickerRef.port"),
         f"{P}: spec.endpointPickerRef.port: is required when kind is 'Service'", True),
    Case("pool-epp-port-range", POOL_V1, _set("spec.endpointPickerRef.port", {"number": 0}),
         f"{P}: spec.endpointPickerRef.port: 0 must be an integer from 1 to 65535", True),
    Case("pool-epp-port-number", POOL_V1, _set("spec.endpointPickerRef.port", {}),
         f"{P}: spec.endpointPickerRef.port.number: is required", True),
    Case("pool-epp-failure-mode", POOL_V1, _set("spec.endpointPickerRef.failureMode", "FailSometimes"),
         f"{P}: spec.endpointPickerRef.failureMode: 'FailSometimes' must be one of FailOpen, "
         "FailClose", True),
    Case("pool-epp-kind", POOL_V1, _set("spec.endpointPickerRef.kind", "apps/Deployment"),
         f"{P}: spec.endpointPickerRef.kind: 'apps/Deployment' is not a valid kind", True),
    Case("pool-epp-group", POOL_V1, _set("spec.endpointPickerRef.group", "Example.com"),
         f"{P}: spec.endpointPickerRef.group: 'Example.com' is not a valid API group", True),
    Case("pool-unknown-field", POOL_V1, _set("spec.targetPort", [{"number": 1}]),
         f"{P}: spec.targetPort: unknown field; did you mean 'targetPorts'?", True),
    # --- InferencePool v1alpha2 -------------------------------------------------------------
    Case("legacy-extension-ref-missing", POOL_V1ALPHA2, _del("spec.extensionRef"),
         f"{PA}: spec.extensionRef: is required", True),
    Case("legacy-port-range", POOL_V1ALPHA2, _set("spec.targetPortNumber", 0),
         f"{PA}: spec.targetPortNumber: 0 must be an integer from 1 to 65535", True),
    Case("legacy-extension-port-type", POOL_V1ALPHA2, _set("spec.extensionRef.portNumber", "9002"),
         f"{PA}: spec.extensionRef.portNumber: '9002' must be an integer from 1 to 65535", True),
    Case("legacy-selector-matchlabels", POOL_V1ALPHA2, _set("spec.selector", {"matchLabels": {"app": "x"}}),
         f"{PA}: spec.selector[matchLabels]: label values must be strings, got dict", True),
    # --- InferenceModel ---------------------------------------------------------------------
    Case("model-name-missing", MODEL, _del("spec.modelName"),
         f"{M}: spec.modelName: is required", True),
    Case("model-name-empty", MODEL, _set("spec.modelName", ""),
         f"{M}: spec.modelName: must not be empty", True),
    Case("model-name-long", MODEL, _set("spec.modelName", "m" * 257),
         f"{M}: spec.modelName: must be at most 256 characters, is 257", True),
    Case("model-criticality", MODEL, _set("spec.criticality", "Default"),
         f"{M}: spec.criticality: 'Default' must be one of Critical, Standard, Sheddable", True),
    Case("model-targets-too-many", MODEL, _set("spec.targetModels", _targets(11)),
         f"{M}: spec.targetModels: must list at most 10 targets, lists 11", True),
    Case("model-weight-zero", MODEL, _set("spec.targetModels.0.weight", 0),
         f"{M}: spec.targetModels[0].weight: 0 must be an integer from 1 to 1000000", True),
    Case("model-weight-high", MODEL, _set("spec.targetModels.1.weight", 1000001),
         f"{M}: spec.targetModels[1].weight: 1000001 must be an integer from 1 to 1000000", True),
    Case("model-weights-all-or-none", MODEL, _del("spec.targetModels.1.weight"),
         f"{M}: spec.targetModels: weights must be set for all targets or for none; missing at 1", True),
    Case("model-target-name", MODEL, _set("spec.targetModels", [{"weight": 1}]),
         f"{M}: spec.targetModels[0].name: is required", True),
    Case("model-target-name-long", MODEL, _set("spec.targetModels", [{"name": "a" * 254}]),
         f"{M}: spec.targetModels[0].name: must be at most 253 characters, is 254", True),
    Case("model-pool-ref-missing", MODEL, _del("spec.poolRef"),
         f"{M}: spec.poolRef: is required", True),
    Case("model-pool-ref-name", MODEL, _set("spec.poolRef", {"group": "inference.networking.k8s.io"}),
         f"{M}: spec.poolRef.name: is required", True),
    Case("model-pool-ref-kind", MODEL, _set("spec.poolRef.kind", "Service"),
         f"{M}: spec.poolRef.kind: 'Service' must be InferencePool", True),
    Case("model-pool-ref-group", MODEL, _set("spec.poolRef.group", "apps"),
         f"{M}: spec.poolRef.group: 'apps' must be one of inference.networking.k8s.io, "
         "inference.networking.x-k8s.io", True),
    Case("model-unknown-field", MODEL, _set("spec.targetModel", []),
         f"{M}: spec.targetModel: unknown field; did you mean 'targetModels'?", True),
    # --- InferenceObjective -----------------------------------------------------------------
    Case("objective-priority-type", OBJECTIVE, _set("spec.priority", "high"),
         f"{O}: spec.priority: must be an integer, got str", True),
    Case("objective-pool-ref", OBJECTIVE, _del("spec.poolRef"),
         f"{O}: spec.poolRef: is required", True),
    # --- InferenceModelRewrite --------------------------------------------------------------
    Case("rewrite-rules-missing", REWRITE, _del("spec.rules"),
         f"{R}: spec.rules: is required", True),
    Case("rewrite-match-type", REWRITE, _set("spec.rules.0.matches.0.model.type", "Prefix"),
         f"{R}: spec.rules[0].matches[0].model.type: 'Prefix' must be one of Exact", True),
    Case("rewrite-match-value", REWRITE, _set("spec.rules.0.matches.0.model.value", ""),
         f"{R}: spec.rules[0].matches[0].model.value: must not be empty", True),
    Case("rewrite-match-model", REWRITE, _set("spec.rules.0.matches", [{"name": "chat"}]),
         f"{R}: spec.rules[0].matches[0].model: is required", True),
    Case("rewrite-targets-empty", REWRITE, _set("spec.rules.0.targets", []),
         f"{R}: spec.rules[0].targets: must be a non-empty list when present", True),
    Case("rewrite-target-name", REWRITE, _set("spec.rules.0.targets", [{"weight": 1}]),
         f"{R}: spec.rules[0].targets[0].modelRewrite: is required", True),
    Case("rewrite-weight-zero", REWRITE, _set("spec.rules.0.targets.0.weight", 0),
         f"{R}: spec.rules[0].targets[0].weight: 0 must be an integer from 1 to 1000000", True),
    Case("rewrite-weights-all-or-none", REWRITE, _del("spec.rules.0.targets.0.weight"),
         f"{R}: spec.rules[0].targets: weights must be set for all targets or for none; missing at 0", True),
    # --- Pod (local fleets) -----------------------------------------------------------------
    Case("pod-ip", POD, _set("status.podIP", "10.0.0.300"),
         "Pod default/vllm-0: status.podIP: '10.0.0.300' is not an IP address", False),
    Case("pod-api-version", POD, _set("apiVersion", "v2"),
         "Pod default/vllm-0: apiVersion: 'v2' is not supported for Pod; use v1", False),
]
# fmt: on
