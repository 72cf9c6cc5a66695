"""Status conditions the controller writes, shaped like upstream's.

InferenceModel: condition Accepted with reason Accepted (True), ModelNameInUse (False) or
Pending (Unknown, its pool is not known yet).

InferencePool: one status.parents[] entry per Gateway whose HTTPRoute sends traffic to the
pool, each with Accepted (the route was accepted by that Gateway: Accepted / False
HTTPRouteNotAccepted / Unknown Pending) and ResolvedRefs (the endpointPickerRef names a
Service that exists: ResolvedRefs / False InvalidExtensionRef). An empty list means no
Gateway routes to the pool.

Everything here is pure: it computes the status an object should have; the controller
compares and patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inference_gateway.sources.kubernetes.client import GATEWAY_GROUP, CustomResource

Obj = dict[str, Any]

MODEL_VERDICTS: dict[str, tuple[str, str]] = {
    "Accepted": ("True", "InferenceModel is accepted by its pool"),
    "ModelNameInUse": ("False", "another InferenceModel in the pool already serves this modelName"),
    "Pending": ("Unknown", "waiting for the InferencePool named in poolRef"),
}


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str, status: str, reason: str, message: str, generation: int, previous: list[Obj] | None
) -> Obj:
    """A metav1.Condition; lastTransitionTime moves only when status changes."""
    before = next((c for c in previous or [] if c.get("type") == type_), None)
    moved = before is None or before.get("status") != status or not before.get("lastTransitionTime")
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": now_rfc3339() if moved else before["lastTransitionTime"],  # type: ignore[index]
    }


def _comparable(conditions: list[Obj] | None) -> list[tuple[Any, ...]]:
    keys = ("type", "status", "reason", "message", "observedGeneration")
    return sorted(tuple(c.get(k) for k in keys) for c in conditions or [])


def same_conditions(a: list[Obj] | None, b: list[Obj] | None) -> bool:
    return _comparable(a) == _comparable(b)


@dataclass(frozen=True, slots=True)
class StatusPatch:
    """`status` to merge-patch onto `namespace/name` of `resource`."""

    resource: CustomResource
    namespace: str
    name: str
    status: Obj


def _generation(obj: Obj) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 1)


def model_patch(resource: CustomResource, obj: Obj, verdict: str) -> StatusPatch | None:
    """The InferenceModel's Accepted condition for `verdict`; None if already written."""
    status, message = MODEL_VERDICTS[verdict]
    current = (obj.get("status") or {}).get("conditions") or []
    wanted = condition("Accepted", status, verdict, message, _generation(obj), current)
    others = [c for c in current if c.get("type") not in ("Accepted", "Ready")]
    new = [*others, wanted]
    if same_conditions(current, new):
        return None
    meta = obj["metadata"]
    return StatusPatch(resource, meta.get("namespace", ""), meta["name"], {"conditions": new})


# --- InferencePool --------------------------------------------------------
def _pool_backend(ref: Obj, route_ns: str, pool_group: str, pool_name: str, pool_ns: str) -> bool:
    return (
        ref.get("kind") == "InferencePool"
        and (ref.get("group") or "") == pool_group
        and ref.get("name") == pool_name
        and (ref.get("namespace") or route_ns) == pool_ns
    )


def _parent_key(ref: Obj, route_ns: str) -> tuple[str, str, str, str]:
    return (
        ref.get("group") or GATEWAY_GROUP,
        ref.get("kind") or "Gateway",
        ref.get("namespace") or route_ns,
        ref.get("name") or "",
    )


def _route_accepted(route: Obj, key: tuple[str, str, str, str], route_ns: str) -> str | None:
    for parent in (route.get("status") or {}).get("parents") or []:
        if _parent_key(parent.get("parentRef") or {}, route_ns) == key:
            for cond in parent.get("conditions") or []:
                if cond.get("type") == "Accepted":
                    return str(cond.get("status"))
    return None


def pool_parents(
    routes: list[Obj], pool_group: str, pool_name: str, pool_ns: str
) -> dict[tuple[str, ...], str]:
    """Gateways routing to the pool -> 'True' / 'False' / 'Unknown' (their route accepted?)."""
    parents: dict[tuple[str, ...], str] = {}
    for route in routes:
        route_ns = (route.get("metadata") or {}).get("namespace", "")
        spec = route.get("spec") or {}
        refs = [ref for rule in spec.get("rules") or [] for ref in rule.get("backendRefs") or []]
        if not any(_pool_backend(r, route_ns, pool_group, pool_name, pool_ns) for r in refs):
            continue
        for parent in spec.get("parentRefs") or []:
            key = _parent_key(parent, route_ns)
            accepted = _route_accepted(route, key, route_ns) or "Unknown"
            # Several routes to one Gateway: accepted if any route was.
            if parents.get(key) != "True":
                parents[key] = accepted
    return parents


def extension_ref_error(pool: Obj) -> str | None:
    """Why the endpointPickerRef cannot resolve, judging the reference alone."""
    spec = pool.get("spec") or {}
    ref = spec.get("endpointPickerRef") or spec.get("extensionRef") or {}
    if not ref.get("name"):
        return "endpointPickerRef.name is not set"
    if (ref.get("kind") or "Service") != "Service" or (ref.get("group") or "") not in ("", "core"):
        return f"endpointPickerRef must name a core Service, not {ref.get('group')}/{ref.get('kind')}"
    return None


def epp_service_name(pool: Obj) -> str | None:
    spec = pool.get("spec") or {}
    ref = spec.get("endpointPickerRef") or spec.get("extensionRef") or {}
    return ref.get("name") or None


_ACCEPTED = {
    "True": ("Accepted", "InferencePool is accepted by the parent through its HTTPRoute"),
    "False": (
        "HTTPRouteNotAccepted",
        "the HTTPRoute referencing this InferencePool was not accepted by the parent",
    ),
    "Unknown": ("Pending", "waiting for the parent to accept the HTTPRoute"),
}


CONTROLLER_NAME = "inference-gateway.dev/epp"


def pool_patch(
    resource: CustomResource, pool: Obj, parents: dict[tuple[str, ...], str], ref_error: str | None
) -> StatusPatch | None:
    """Our entries carry CONTROLLER_NAME; entries other controllers (gateways) wrote are kept
    as they are, and a parent another controller already reports is left to it (v1 API)."""
    legacy = resource.version == "v1alpha2"
    key = "parent" if legacy else "parents"
    existing = list((pool.get("status") or {}).get(key) or [])
    foreign = (
        [] if legacy else [e for e in existing if e.get("controllerName") not in (None, "", CONTROLLER_NAME)]
    )
    taken = {_current_key(e, legacy) for e in foreign}
    current = {_current_key(p, legacy): p.get("conditions") or [] for p in existing if p not in foreign}
    generation = _generation(pool)
    entries: list[Obj] = []
    for parent_key, accepted in sorted(parents.items()):
        if parent_key in taken:
            continue
        previous = current.get(parent_key)
        reason, message = _ACCEPTED[accepted]
        resolved = (
            ("False", "InvalidExtensionRef", ref_error)
            if ref_error
            else ("True", "ResolvedRefs", "endpointPickerRef resolved")
        )
        conditions = [
            condition("Accepted", accepted, reason, message, generation, previous),
            condition("ResolvedRefs", *resolved, generation, previous),
        ]
        entry: Obj = {"parentRef": _parent_ref(parent_key, legacy), "conditions": conditions}
        if not legacy:
            entry["controllerName"] = CONTROLLER_NAME
        entries.append(entry)
    unchanged = len(entries) == len(current) and all(
        same_conditions(current.get(_current_key(e, legacy)), e["conditions"]) for e in entries
    )
    if unchanged:
        return None
    meta = pool["metadata"]
    return StatusPatch(resource, meta.get("namespace", ""), meta["name"], {key: [*foreign, *entries]})


def _parent_ref(key: tuple[str, ...], legacy: bool) -> Obj:
    group, kind, namespace, name = key
    if legacy:  # v1alpha2 used a corev1.ObjectReference
        return {"apiVersion": f"{group}/v1", "kind": kind, "namespace": namespace, "name": name}
    return {"group": group, "kind": kind, "namespace": namespace, "name": name}


def _current_key(entry: Obj, legacy: bool) -> tuple[str, ...]:
    ref = entry.get("parentRef") or {}
    group = (ref.get("apiVersion") or "").split("/")[0] if legacy else ref.get("group")
    return (
        group or GATEWAY_GROUP,
        ref.get("kind") or "Gateway",
        ref.get("namespace") or "",
        ref.get("name") or "",
    )
