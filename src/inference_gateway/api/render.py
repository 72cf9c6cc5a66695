"""The inverse of the parsers: gateway types back to Kubernetes-style manifests.

`parse(render(x)) == x` for every parsed object; the CLI uses it to print the effective
configuration and the Kubernetes controller to compare desired and observed objects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import singledispatch
from typing import Any

from inference_gateway.api.types import (
    LEGACY_GROUP,
    X_V1ALPHA2,
    InferenceModel,
    InferenceModelRewrite,
    InferenceObjective,
    InferencePool,
    ObjectRef,
    Pod,
    RewriteRule,
)


def _metadata(ref: ObjectRef, created_at: float = 0.0, generation: int = 1) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": ref.name, "namespace": ref.namespace}
    if generation != 1:
        meta["generation"] = generation
    if created_at:
        meta["creationTimestamp"] = datetime.fromtimestamp(created_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return meta


@singledispatch
def render(obj: object) -> dict[str, Any]:
    raise TypeError(f"cannot render {type(obj).__name__}")


@render.register
def _pool(pool: InferencePool) -> dict[str, Any]:
    ref = pool.endpoint_picker
    legacy = pool.api_version.startswith(LEGACY_GROUP + "/")
    picker: dict[str, Any] = {"group": ref.group, "kind": ref.kind, "name": ref.name}
    picker.update({"portNumber": ref.port} if legacy else {"port": {"number": ref.port}})
    picker["failureMode"] = ref.failure_mode.value
    if legacy:
        spec: dict[str, Any] = {
            "selector": dict(pool.selector),
            "targetPortNumber": pool.target_ports[0],
            "extensionRef": picker,
        }
    else:
        spec = {
            "selector": {"matchLabels": dict(pool.selector)},
            "targetPorts": [{"number": p} for p in pool.target_ports],
            "appProtocol": pool.app_protocol.value,
        }
        if ref.is_set:
            spec["endpointPickerRef"] = picker
    return {
        "apiVersion": pool.api_version,
        "kind": "InferencePool",
        "metadata": _metadata(pool.ref, generation=pool.generation),
        "spec": spec,
    }


@render.register
def _model(model: InferenceModel) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "modelName": model.model_name,
        "criticality": model.criticality.label,
        "poolRef": {"name": model.pool.name},
    }
    if model.target_models:
        spec["targetModels"] = [
            {"name": t.name} if t.weight is None else {"name": t.name, "weight": t.weight}
            for t in model.target_models
        ]
    return {
        "apiVersion": X_V1ALPHA2,
        "kind": "InferenceModel",
        "metadata": _metadata(model.ref, model.created_at, model.generation),
        "spec": spec,
    }


@render.register
def _objective(obj: InferenceObjective) -> dict[str, Any]:
    return {
        "apiVersion": X_V1ALPHA2,
        "kind": "InferenceObjective",
        "metadata": _metadata(obj.ref, obj.created_at, obj.generation),
        "spec": {"priority": obj.priority, "poolRef": {"name": obj.pool.name}},
    }


def _rule(rule: RewriteRule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rule.match_models:
        out["matches"] = [{"model": {"type": "Exact", "value": m}} for m in rule.match_models]
    if rule.targets:
        out["targets"] = [{"modelRewrite": t.model_rewrite, "weight": t.weight} for t in rule.targets]
    return out


@render.register
def _rewrite(rw: InferenceModelRewrite) -> dict[str, Any]:
    return {
        "apiVersion": X_V1ALPHA2,
        "kind": "InferenceModelRewrite",
        "metadata": _metadata(rw.ref, rw.created_at, rw.generation),
        "spec": {"poolRef": {"name": rw.pool.name}, "rules": [_rule(r) for r in rw.rules]},
    }


@render.register
def _pod(pod: Pod) -> dict[str, Any]:
    meta = _metadata(pod.ref)
    meta["labels"] = dict(pod.labels)
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": "True" if pod.ready else "False"}]}
    if pod.ip:
        status["podIP"] = pod.ip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": status}
