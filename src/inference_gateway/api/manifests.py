"""Parse Kubernetes-style manifests (YAML documents) into the gateway's resource types."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from inference_gateway.api.errors import FieldError, ManifestError
from inference_gateway.api.types import (
    AppProtocol,
    Criticality,
    EndpointPickerRef,
    FailureMode,
    InferenceModel,
    InferenceModelRewrite,
    InferenceObjective,
    InferencePool,
    ObjectRef,
    Pod,
    RewriteRule,
    RewriteTarget,
    TargetModel,
)

KNOWN_GROUPS = ("inference.networking.k8s.io", "inference.networking.x-k8s.io")


@dataclass
class ResourceSet:
    pools: list[InferencePool] = field(default_factory=list)
    models: list[InferenceModel] = field(default_factory=list)
    objectives: list[InferenceObjective] = field(default_factory=list)
    rewrites: list[InferenceModelRewrite] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: ResourceSet) -> None:
        self.pools += other.pools
        self.models += other.models
        self.objectives += other.objectives
        self.rewrites += other.rewrites
        self.pods += other.pods
        self.other += other.other


class _Reader:
    """Walks one object, collecting field errors instead of stopping at the first."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.errors: list[FieldError] = []

    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self.obj
        for part in path.split("."):
            if not isinstance(node, dict):
                self.fail(path, "expected an object")
                return default
            if part not in node:
                return default
            node = node[part]
        return node

    def require(self, path: str, kind: type | tuple[type, ...]) -> Any:
        value = self.get(path)
        if value is None:
            self.fail(path, "is required")
        elif not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self.fail(path, f"must be {_type_name(kind)}, got {type(value).__name__}")
            return None
        return value

    def optional(self, path: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = self.get(path)
        if value is None:
            return default
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self.fail(path, f"must be {_type_name(kind)}, got {type(value).__name__}")
            return default
        return value

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", dict: "an object", list: "a list", bool: "a boolean"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def object_label(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name", "<unnamed>") if isinstance(meta, dict) else "<unnamed>"
    ns = meta.get("namespace", "default") if isinstance(meta, dict) else "default"
    return f"{obj.get('kind', '<no kind>')} {ns}/{name}"


def _ref(r: _Reader, default_ns: str) -> ObjectRef:
    name = r.require("metadata.name", str) or ""
    if name and (len(name) > 253 or not _is_dns_subdomain(name)):
        r.fail("metadata.name", f"{name!r} is not a valid DNS subdomain name")
    return ObjectRef(r.optional("metadata.namespace", str, default_ns), name)


def _is_dns_subdomain(name: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-.")
    return bool(name) and set(name) <= allowed and name[0].isalnum() and name[-1].isalnum()


def _created(r: _Reader) -> float:
    stamp = r.get("metadata.creationTimestamp")
    if isinstance(stamp, str):
        try:
            return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            r.fail("metadata.creationTimestamp", f"{stamp!r} is not RFC3339 (YYYY-MM-DDTHH:MM:SSZ)")
    return 0.0


def parse_pool(obj: dict[str, Any], default_ns: str = "default") -> tuple[InferencePool, _Reader]:
    r = _Reader(obj)
    ref = _ref(r, default_ns)
    version = str(obj.get("apiVersion", ""))
    if version.endswith("/v1alpha2"):
        selector = r.require("spec.selector", dict) or {}
        port = r.require("spec.targetPortNumber", int)
        ports = [port] if port is not None else []
        ext = r.optional("spec.extensionRef", dict, {})
        picker = _picker(r, ext, "spec.extensionRef", port_key="portNumber")
    else:
        selector = r.require("spec.selector.matchLabels", dict) or {}
        raw_ports = r.require("spec.targetPorts", list) or []
        ports = [p.get("number") if isinstance(p, dict) else None for p in raw_ports]
        ext = r.optional("spec.endpointPickerRef", dict, {})
        picker = _picker(r, ext, "spec.endpointPickerRef", port_key="port")
    _check_selector(r, selector)
    _check_ports(r, ports)
    proto = r.optional("spec.appProtocol", str, "http")
    if proto not in {p.value for p in AppProtocol}:
        r.fail("spec.appProtocol", f"{proto!r} must be 'http' or 'kubernetes.io/h2c'")
        proto = "http"
    pool = InferencePool(
        ref=ref,
        selector={str(k): str(v) for k, v in selector.items()},
        target_ports=tuple(p for p in ports if isinstance(p, int)),
        endpoint_picker=picker,
        app_protocol=AppProtocol(proto),
        generation=int(r.optional("metadata.generation", int, 1)),
    )
    return pool, r


def _picker(r: _Reader, ext: dict[str, Any], path: str, port_key: str) -> EndpointPickerRef:
    name = ext.get("name", "")
    if (ext and not isinstance(name, str)) or (ext and not name):
        r.fail(f"{path}.name", "is required")
        name = ""
    raw_port = ext.get(port_key, 9002)
    port = raw_port.get("number", 9002) if isinstance(raw_port, dict) else raw_port
    if not isinstance(port, int) or not 1 <= port <= 65535:
        r.fail(f"{path}.{port_key}", f"{port!r} must be a port number 1-65535")
        port = 9002
    mode = ext.get("failureMode", FailureMode.FAIL_CLOSE.value)
    if mode not in {m.value for m in FailureMode}:
        r.fail(f"{path}.failureMode", f"{mode!r} must be FailOpen or FailClose")
        mode = FailureMode.FAIL_CLOSE.value
    return EndpointPickerRef(
        name=str(name),
        port=port,
        group=str(ext.get("group", "")),
        kind=str(ext.get("kind", "Service")),
        failure_mode=FailureMode(mode),
    )


def _check_selector(r: _Reader, selector: dict[str, Any]) -> None:
    if not 1 <= len(selector) <= 64:
        r.fail("spec.selector", f"must have 1-64 labels, has {len(selector)}")
    for key, value in selector.items():
        if not isinstance(value, str):
            r.fail(f"spec.selector[{key}]", "label values must be strings")


def _check_ports(r: _Reader, ports: list[Any]) -> None:
    if not 1 <= len(ports) <= 8:
        r.fail("spec.targetPorts", f"must list 1-8 ports, lists {len(ports)}")
    for i, port in enumerate(ports):
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            r.fail(f"spec.targetPorts[{i}].number", f"{port!r} must be a port number 1-65535")
    numbers = [p for p in ports if isinstance(p, int)]
    if len(set(numbers)) != len(numbers):
        r.fail("spec.targetPorts", "port numbers must be unique")


def parse_model(obj: dict[str, Any], default_ns: str = "default") -> tuple[InferenceModel, _Reader]:
    r = _Reader(obj)
    ref = _ref(r, default_ns)
    model_name = r.require("spec.modelName", str) or ""
    if len(model_name) > 256:
        r.fail("spec.modelName", f"must be at most 256 characters, is {len(model_name)}")
    pool_name = r.require("spec.poolRef.name", str) or ""
    try:
        crit = Criticality.parse(r.optional("spec.criticality", str))
    except ValueError as exc:
        r.fail("spec.criticality", str(exc))
        crit = Criticality.STANDARD
    targets = _targets(r, r.optional("spec.targetModels", list, []))
    model = InferenceModel(
        ref=ref,
        model_name=model_name,
        pool=ObjectRef(ref.namespace, pool_name),
        criticality=crit,
        target_models=targets,
        created_at=_created(r),
    )
    return model, r


def _targets(r: _Reader, raw: list[Any]) -> tuple[TargetModel, ...]:
    if len(raw) > 10:
        r.fail("spec.targetModels", f"must list at most 10 targets, lists {len(raw)}")
    out: list[TargetModel] = []
    for i, t in enumerate(raw):
        path = f"spec.targetModels[{i}]"
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not t.get("name"):
            r.fail(f"{path}.name", "is required")
            continue
        weight = t.get("weight")
        if weight is not None and (
            not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 1_000_000
        ):
            r.fail(f"{path}.weight", f"{weight!r} must be an integer 1-1000000")
            weight = None
        out.append(TargetModel(t["name"], weight))
    weighted = [t.weight is not None for t in out]
    if any(weighted) and not all(weighted):
        r.fail("spec.targetModels", "either all targets have a weight or none do")
    return tuple(out)


def parse_objective(obj: dict[str, Any], default_ns: str = "default") -> tuple[InferenceObjective, _Reader]:
    r = _Reader(obj)
    ref = _ref(r, default_ns)
    priority = r.optional("spec.priority", int, 0)
    pool_name = r.require("spec.poolRef.name", str) or ""
    return InferenceObjective(ref, priority, ObjectRef(ref.namespace, pool_name), _created(r)), r


def parse_rewrite(obj: dict[str, Any], default_ns: str = "default") -> tuple[InferenceModelRewrite, _Reader]:
    r = _Reader(obj)
    ref = _ref(r, default_ns)
    pool_name = r.require("spec.poolRef.name", str) or ""
    rules: list[RewriteRule] = []
    for i, rule in enumerate(r.require("spec.rules", list) or []):
        path = f"spec.rules[{i}]"
        matches = [
            m.get("model", {}).get("value")
            for m in (rule.get("matches") or [])
            if isinstance(m, dict) and isinstance(m.get("model"), dict)
        ]
        targets = []
        for j, t in enumerate(rule.get("targets") or []):
            if not isinstance(t, dict) or not isinstance(t.get("modelRewrite"), str):
                r.fail(f"{path}.targets[{j}].modelRewrite", "is required")
                continue
            weight = t.get("weight", 1)
            if not isinstance(weight, int) or weight < 0:
                r.fail(f"{path}.targets[{j}].weight", f"{weight!r} must be a non-negative integer")
                weight = 1
            targets.append(RewriteTarget(t["modelRewrite"], weight))
        if not targets:
            r.fail(f"{path}.targets", "needs at least one target")
        rules.append(RewriteRule(tuple(m for m in matches if isinstance(m, str)), tuple(targets)))
    return InferenceModelRewrite(ref, ObjectRef(ref.namespace, pool_name), tuple(rules), _created(r)), r


def parse_pod(obj: dict[str, Any], default_ns: str = "default") -> tuple[Pod, _Reader]:
    r = _Reader(obj)
    ref = _ref(r, default_ns)
    ip = r.optional("status.podIP", str, "")
    conditions = r.optional("status.conditions", list, [])
    ready = any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )
    labels = r.optional("metadata.labels", dict, {})
    return Pod(ref, ip, {str(k): str(v) for k, v in labels.items()}, ready and bool(ip)), r


_PARSERS: dict[str, Any] = {
    "InferencePool": (parse_pool, "pools"),
    "InferenceModel": (parse_model, "models"),
    "InferenceObjective": (parse_objective, "objectives"),
    "InferenceModelRewrite": (parse_rewrite, "rewrites"),
    "Pod": (parse_pod, "pods"),
}


def parse_objects(objects: Iterable[Any], source: str) -> ResourceSet:
    """Parse objects; raise ManifestError for the first invalid one (naming all its errors)."""
    out = ResourceSet()
    for index, obj in enumerate(objects):
        if obj is None:
            continue
        if not isinstance(obj, dict):
            raise ManifestError(source, f"document {index}", [FieldError("", "not a YAML mapping")])
        kind = obj.get("kind")
        if kind not in _PARSERS:
            out.other.append(obj)
            continue
        group = str(obj.get("apiVersion", "")).split("/")[0]
        if kind != "Pod" and group not in KNOWN_GROUPS:
            raise ManifestError(
                source,
                object_label(obj),
                [FieldError("apiVersion", f"{obj.get('apiVersion')!r} is not a known API group/version")],
            )
        parser, bucket = _PARSERS[kind]
        parsed, reader = parser(obj)
        if reader.errors:
            raise ManifestError(source, object_label(obj), reader.errors)
        getattr(out, bucket).append(parsed)
    return out


def load_yaml_documents(text: str, source: str) -> Iterator[Any]:
    try:
        yield from yaml.safe_load_all(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(source, "YAML", [FieldError("", f"invalid YAML at {where}: {problem}")]) from exc


def parse_yaml(text: str, source: str) -> ResourceSet:
    return parse_objects(list(load_yaml_documents(text, source)), source)
