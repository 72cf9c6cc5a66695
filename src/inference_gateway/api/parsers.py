"""One parser per resource kind: a Kubernetes-style dict in, a validated gateway type out.

Each parser returns the object and the reader holding every field error it found; the object is
only meaningful when the reader has no errors.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

from inference_gateway.api import validation as v
from inference_gateway.api.types import (
    LEGACY_GROUP,
    POOL_GROUP,
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
from inference_gateway.api.validation import ObjectReader

POOL_GROUPS = (POOL_GROUP, LEGACY_GROUP)
_POOL_REF_FIELDS = ("group", "kind", "name")


def _ref(r: ObjectReader, default_ns: str) -> ObjectRef:
    name = r.require("metadata.name", str) or ""
    if name:
        r.string("metadata.name", name, v.NAME_MAX)
        r.pattern("metadata.name", name, v.DNS_SUBDOMAIN, "a valid name (lowercase a-z, 0-9, '-' and '.')")
    namespace = r.optional("metadata.namespace", str, default_ns) or default_ns
    r.string("metadata.namespace", namespace, v.NAMESPACE_MAX)
    r.pattern("metadata.namespace", namespace, v.DNS_LABEL, "a valid namespace (lowercase a-z, 0-9 and '-')")
    return ObjectRef(namespace, name)


def _created(r: ObjectReader) -> float:
    stamp = r.get("metadata.creationTimestamp")
    if stamp is None:
        return 0.0
    if isinstance(stamp, datetime):  # YAML turns unquoted timestamps into datetimes
        parsed = stamp
    else:
        try:
            parsed = datetime.fromisoformat(str(stamp))
        except ValueError:
            r.fail("metadata.creationTimestamp", f"{stamp!r} is not an RFC 3339 time (2025-01-31T12:00:00Z)")
            return 0.0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _generation(r: ObjectReader) -> int:
    return int(r.optional("metadata.generation", int, 1))


def _spec(r: ObjectReader, fields: tuple[str, ...]) -> dict[str, Any]:
    spec = r.require("spec", dict) or {}
    r.known_fields("spec", spec, fields)
    return spec


def _pool_ref(r: ObjectReader, ns: str) -> ObjectRef:
    raw = r.require("spec.poolRef", dict)
    if raw is None:
        return ObjectRef(ns, "")
    r.known_fields("spec.poolRef", raw, _POOL_REF_FIELDS)
    if "group" in raw and r.group("spec.poolRef.group", raw["group"]) not in POOL_GROUPS:
        r.fail("spec.poolRef.group", f"{raw['group']!r} must be one of {', '.join(POOL_GROUPS)}")
    if "kind" in raw and r.kind("spec.poolRef.kind", raw["kind"]) != "InferencePool":
        r.fail("spec.poolRef.kind", f"{raw['kind']!r} must be InferencePool")
    if "name" not in raw:
        r.fail("spec.poolRef.name", "is required")
        return ObjectRef(ns, "")
    return ObjectRef(ns, r.object_name("spec.poolRef.name", raw["name"]))


# --- InferencePool ----------------------------------------------------------------------------
def parse_pool(obj: dict[str, Any], default_ns: str = "default") -> tuple[InferencePool, ObjectReader]:
    r = ObjectReader(obj)
    ref = _ref(r, default_ns)
    version = str(obj.get("apiVersion", ""))
    if version.startswith(LEGACY_GROUP + "/"):
        _spec(r, ("selector", "targetPortNumber", "extensionRef"))
        selector_path = "spec.selector"
        selector = r.require(selector_path, dict) or {}
        port = r.require("spec.targetPortNumber", int)
        ports = [port] if port is not None else []
        path, port_key = "spec.extensionRef", "portNumber"
        ext = r.require(path, dict) or {}
        proto = AppProtocol.HTTP.value
    else:
        spec = _spec(r, ("selector", "targetPorts", "appProtocol", "endpointPickerRef"))
        r.known_fields("spec.selector", spec.get("selector"), ("matchLabels",))
        selector_path = "spec.selector.matchLabels"
        selector = r.require(selector_path, dict) or {}
        ports = _v1_ports(r)
        path, port_key = "spec.endpointPickerRef", "port"
        ext = r.optional(path, dict, {})
        proto = r.optional("spec.appProtocol", str, AppProtocol.HTTP.value)
        if not r.enum("spec.appProtocol", proto, [p.value for p in AppProtocol]):
            proto = AppProtocol.HTTP.value
    r.known_fields(path, ext, ("group", "kind", "name", port_key, "failureMode"))
    pool = InferencePool(
        ref=ref,
        selector=r.label_selector(selector_path, selector),
        target_ports=_check_ports(r, ports),
        endpoint_picker=_picker(r, ext, path, port_key) if ext else EndpointPickerRef(name=""),
        app_protocol=AppProtocol(proto),
        generation=_generation(r),
        api_version=version,
    )
    return pool, r


def _v1_ports(r: ObjectReader) -> list[Any]:
    raw = r.require("spec.targetPorts", list) or []
    ports: list[Any] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or "number" not in item:
            r.fail(f"spec.targetPorts[{i}].number", "is required")
            continue
        r.known_fields(f"spec.targetPorts[{i}]", item, ("number",))
        ports.append(item["number"])
    return ports


def _check_ports(r: ObjectReader, ports: list[Any]) -> tuple[int, ...]:
    low, high = v.TARGET_PORTS_MIN, v.TARGET_PORTS_MAX
    if r.get("spec.targetPorts") is not None and not low <= len(ports) <= high:
        r.fail("spec.targetPorts", f"must list {low}-{high} ports, lists {len(ports)}")
    legacy = r.get("spec.targetPortNumber") is not None
    good: list[int] = []
    for i, port in enumerate(ports):
        where = "spec.targetPortNumber" if legacy else f"spec.targetPorts[{i}].number"
        number = r.int_range(where, port, v.PORT_MIN, v.PORT_MAX)
        if number is not None:
            good.append(number)
    dupes = sorted({p for p in good if good.count(p) > 1})
    if dupes:
        r.fail("spec.targetPorts", f"port numbers must be unique; repeated: {', '.join(map(str, dupes))}")
    return tuple(dict.fromkeys(good))


def _picker(r: ObjectReader, ext: dict[str, Any], path: str, port_key: str) -> EndpointPickerRef:
    name = r.object_name(f"{path}.name", ext["name"]) if "name" in ext else ""
    if "name" not in ext:
        r.fail(f"{path}.name", "is required")
    group = r.group(f"{path}.group", ext.get("group", ""))
    kind = r.kind(f"{path}.kind", ext.get("kind", "Service"))
    raw_port = ext.get(port_key)
    if port_key == "port":
        r.known_fields(f"{path}.port", raw_port, ("number",))
        if isinstance(raw_port, dict) and "number" not in raw_port:
            r.fail(f"{path}.port.number", "is required")
        raw_port = raw_port.get("number", v.LEGACY_EPP_PORT) if isinstance(raw_port, dict) else raw_port
        if raw_port is None and kind == "Service":
            r.fail(f"{path}.port", "is required when kind is 'Service' (the picker's gRPC port, e.g. 9002)")
    port = v.LEGACY_EPP_PORT
    if raw_port is not None:
        port = r.int_range(f"{path}.{port_key}", raw_port, v.PORT_MIN, v.PORT_MAX) or v.LEGACY_EPP_PORT
    mode = ext.get("failureMode", FailureMode.FAIL_CLOSE.value)
    if not r.enum(f"{path}.failureMode", mode, [m.value for m in FailureMode]):
        mode = FailureMode.FAIL_CLOSE.value
    return EndpointPickerRef(name=name, port=port, group=group, kind=kind, failure_mode=FailureMode(mode))


# --- InferenceModel ---------------------------------------------------------------------------
def parse_model(obj: dict[str, Any], default_ns: str = "default") -> tuple[InferenceModel, ObjectReader]:
    r = ObjectReader(obj)
    ref = _ref(r, default_ns)
    _spec(r, ("modelName", "criticality", "targetModels", "poolRef"))
    raw_name = r.require("spec.modelName", str)
    model_name = r.string("spec.modelName", raw_name, v.MODEL_NAME_MAX) if raw_name is not None else ""
    crit = Criticality.STANDARD
    raw_crit = r.optional("spec.criticality", str)
    if raw_crit is not None and r.enum("spec.criticality", raw_crit, [c.label for c in Criticality][::-1]):
        crit = Criticality.parse(raw_crit)
    model = InferenceModel(
        ref=ref,
        model_name=model_name,
        pool=_pool_ref(r, ref.namespace),
        criticality=crit,
        target_models=_targets(r, r.optional("spec.targetModels", list, [])),
        created_at=_created(r),
        generation=_generation(r),
    )
    return model, r


def _targets(r: ObjectReader, raw: list[Any]) -> tuple[TargetModel, ...]:
    if len(raw) > v.TARGET_MODELS_MAX:
        r.fail("spec.targetModels", f"must list at most {v.TARGET_MODELS_MAX} targets, lists {len(raw)}")
    out: list[TargetModel] = []
    for i, t in enumerate(raw):
        path = f"spec.targetModels[{i}]"
        if not isinstance(t, dict):
            r.fail(path, f"must be an object with name and weight, got {type(t).__name__}")
            continue
        r.known_fields(path, t, ("name", "weight"))
        if "name" not in t:
            r.fail(f"{path}.name", "is required")
            continue
        name = r.string(f"{path}.name", t["name"], v.TARGET_MODEL_NAME_MAX)
        weight = t.get("weight")
        if weight is not None:
            weight = r.int_range(f"{path}.weight", weight, v.WEIGHT_MIN, v.WEIGHT_MAX)
        out.append(TargetModel(name, weight))
    _weights_all_or_none(r, "spec.targetModels", [isinstance(t, dict) and "weight" in t for t in raw])
    return tuple(out)


def _weights_all_or_none(r: ObjectReader, path: str, has_weight: list[bool]) -> None:
    if any(has_weight) and not all(has_weight):
        missing = [str(i) for i, has in enumerate(has_weight) if not has]
        r.fail(path, f"weights must be set for all targets or for none; missing at {', '.join(missing)}")


# --- InferenceObjective -----------------------------------------------------------------------
_LEGACY_PRIORITY = {c.label: int(c) for c in Criticality}


def parse_objective(
    obj: dict[str, Any], default_ns: str = "default"
) -> tuple[InferenceObjective, ObjectReader]:
    r = ObjectReader(obj)
    ref = _ref(r, default_ns)
    _spec(r, ("priority", "poolRef", "criticality"))
    priority = r.optional("spec.priority", int)
    legacy = r.optional("spec.criticality", str)
    # The short-lived v1alpha2 InferenceObjective carried a criticality instead of a priority.
    if priority is None and legacy is not None and r.enum("spec.criticality", legacy, list(_LEGACY_PRIORITY)):
        priority = _LEGACY_PRIORITY[legacy]
    pool = _pool_ref(r, ref.namespace)
    return InferenceObjective(ref, priority or 0, pool, _created(r), _generation(r)), r


# --- InferenceModelRewrite --------------------------------------------------------------------
def parse_rewrite(
    obj: dict[str, Any], default_ns: str = "default"
) -> tuple[InferenceModelRewrite, ObjectReader]:
    r = ObjectReader(obj)
    ref = _ref(r, default_ns)
    _spec(r, ("poolRef", "rules"))
    pool = _pool_ref(r, ref.namespace)
    rules: list[RewriteRule] = []
    for i, rule in enumerate(r.require("spec.rules", list) or []):
        path = f"spec.rules[{i}]"
        if not isinstance(rule, dict):
            r.fail(path, f"must be an object with matches and targets, got {type(rule).__name__}")
            continue
        r.known_fields(path, rule, ("matches", "targets"))
        rules.append(RewriteRule(_matches(r, path, rule.get("matches")), _rewrite_targets(r, path, rule)))
    return InferenceModelRewrite(ref, pool, tuple(rules), _created(r), _generation(r)), r


def _matches(r: ObjectReader, path: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        r.fail(f"{path}.matches", f"must be a list, got {type(raw).__name__}")
        return ()
    models: list[str] = []
    for j, match in enumerate(raw):
        where = f"{path}.matches[{j}]"
        model = match.get("model") if isinstance(match, dict) else None
        if not isinstance(model, dict):
            r.fail(f"{where}.model", "is required (an object with type and value)")
            continue
        r.known_fields(where, match, ("model",))
        r.known_fields(f"{where}.model", model, ("type", "value"))
        r.enum(f"{where}.model.type", model.get("type", "Exact"), ["Exact"])
        if "value" not in model:
            r.fail(f"{where}.model.value", "is required")
            continue
        models.append(r.string(f"{where}.model.value", model["value"], v.MODEL_NAME_MAX))
    return tuple(models)


def _rewrite_targets(r: ObjectReader, path: str, rule: dict[str, Any]) -> tuple[RewriteTarget, ...]:
    raw = rule.get("targets")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        r.fail(f"{path}.targets", "must be a non-empty list when present")
        return ()
    targets: list[RewriteTarget] = []
    for j, t in enumerate(raw):
        where = f"{path}.targets[{j}]"
        if not isinstance(t, dict) or "modelRewrite" not in t:
            r.fail(f"{where}.modelRewrite", "is required")
            continue
        r.known_fields(where, t, ("modelRewrite", "weight"))
        name = r.string(f"{where}.modelRewrite", t["modelRewrite"], v.TARGET_MODEL_NAME_MAX)
        weight = 1
        if "weight" in t:
            weight = r.int_range(f"{where}.weight", t["weight"], v.WEIGHT_MIN, v.WEIGHT_MAX) or 1
        targets.append(RewriteTarget(name, weight))
    _weights_all_or_none(r, f"{path}.targets", [isinstance(t, dict) and "weight" in t for t in raw])
    return tuple(targets)


# --- Pod (local fleets describe simulated pods this way) --------------------------------------
def parse_pod(obj: dict[str, Any], default_ns: str = "default") -> tuple[Pod, ObjectReader]:
    r = ObjectReader(obj)
    ref = _ref(r, default_ns)
    ip = r.optional("status.podIP", str, "")
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            r.fail("status.podIP", f"{ip!r} is not an IP address")
            ip = ""
    conditions = r.optional("status.conditions", list, [])
    ready = any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )
    labels = r.optional("metadata.labels", dict, {})
    return Pod(ref, ip, {str(k): str(val) for k, val in labels.items()}, ready and bool(ip)), r
