"""Status conditions for the gateway's resources, computed from what the datastore holds.

The Kubernetes controller writes these to `status`; `inference-gateway validate` and the local
stack print them. Nothing here talks to an API server.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from inference_gateway.api.types import (
    LEGACY_GROUP,
    Condition,
    ConditionStatus,
    ConditionType,
    InferenceModel,
    InferenceModelRewrite,
    InferenceObjective,
    InferencePool,
    ObjectRef,
    ParentRef,
    PoolParentStatus,
    Reason,
)
from inference_gateway.datastore.store import Datastore

DEFAULT_CONTROLLER = "inference-gateway.dev/gateway-controller"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pool_conditions(
    pool: InferencePool, *, epp_found: bool | None = None, now: str | None = None
) -> tuple[Condition, Condition]:
    """Accepted and ResolvedRefs. `epp_found` is whether the picker's Service exists (None: unknown)."""
    now = now or utc_now()
    accepted = Condition(
        ConditionType.ACCEPTED,
        ConditionStatus.TRUE,
        Reason.ACCEPTED,
        "InferencePool is accepted as a backend by this gateway",
        pool.generation,
        now,
    )
    ok, message = _picker_resolves(pool, epp_found)
    resolved = Condition(
        ConditionType.RESOLVED_REFS,
        ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
        Reason.RESOLVED_REFS if ok else Reason.INVALID_EXTENSION_REF,
        message,
        pool.generation,
        now,
    )
    return accepted, resolved


def _picker_resolves(pool: InferencePool, epp_found: bool | None) -> tuple[bool, str]:
    ref = pool.endpoint_picker
    if not ref.is_set:
        return True, "no endpointPickerRef: the gateway's built-in endpoint picker serves this pool"
    if ref.group != "" or ref.kind != "Service":
        kind = f"{ref.group}/{ref.kind}" if ref.group else ref.kind
        return False, f"endpointPickerRef kind {kind!r} is not supported; only a core Service is"
    if epp_found is False:
        return False, f"endpointPickerRef Service {pool.ref.namespace}/{ref.name} not found"
    return True, f"endpointPickerRef resolved to Service {pool.ref.namespace}/{ref.name}:{ref.port}"


def pool_status(
    pool: InferencePool,
    parent: ParentRef,
    *,
    controller_name: str = DEFAULT_CONTROLLER,
    epp_found: bool | None = None,
    now: str | None = None,
) -> PoolParentStatus:
    return PoolParentStatus(parent, pool_conditions(pool, epp_found=epp_found, now=now), controller_name)


def pool_status_body(pool: InferencePool, parents: Iterable[PoolParentStatus]) -> dict[str, Any]:
    """The `status` object in the shape of the pool's apiVersion (v1alpha2 calls the list `parent`)."""
    key = "parent" if pool.api_version.startswith(LEGACY_GROUP + "/") else "parents"
    return {key: [p.to_dict() for p in parents]}


def model_conditions(store: Datastore, now: str | None = None) -> dict[ObjectRef, Condition]:
    """Accepted for every InferenceModel: True, False/ModelNameInUse, or Unknown/Pending."""
    now = now or utc_now()
    states = store.model_status()
    return {m.ref: _model_condition(store, m, states.get(m.ref, "Pending"), now) for m in store.models()}


def _model_condition(store: Datastore, model: InferenceModel, state: str, now: str) -> Condition:
    view = store.pool(model.pool)
    if view is None or state == "Pending":
        return Condition(
            ConditionType.ACCEPTED,
            ConditionStatus.UNKNOWN,
            Reason.PENDING,
            f"InferencePool {model.pool} not found",
            model.generation,
            now,
        )
    if state == "ModelNameInUse":
        holder = view.models.get(model.model_name)
        owner = f" by older InferenceModel {holder.ref}" if holder is not None else ""
        return Condition(
            ConditionType.ACCEPTED,
            ConditionStatus.FALSE,
            Reason.MODEL_NAME_IN_USE,
            f"modelName {model.model_name!r} is already in use in InferencePool {model.pool}{owner}",
            model.generation,
            now,
        )
    return Condition(
        ConditionType.ACCEPTED,
        ConditionStatus.TRUE,
        Reason.ACCEPTED,
        f"modelName {model.model_name!r} is served by InferencePool {model.pool}",
        model.generation,
        now,
    )


def attached_condition(
    store: Datastore, obj: InferenceObjective | InferenceModelRewrite, now: str | None = None
) -> Condition:
    """Accepted for an InferenceObjective or InferenceModelRewrite: True once its pool exists."""
    now = now or utc_now()
    if store.pool(obj.pool) is None:
        return Condition(
            ConditionType.ACCEPTED,
            ConditionStatus.UNKNOWN,
            Reason.PENDING,
            f"InferencePool {obj.pool} not found",
            obj.generation,
            now,
        )
    return Condition(
        ConditionType.ACCEPTED,
        ConditionStatus.TRUE,
        Reason.ACCEPTED,
        f"attached to InferencePool {obj.pool}",
        obj.generation,
        now,
    )


def merge_conditions(
    existing: Iterable[dict[str, Any]] | None, new: Iterable[Condition]
) -> list[dict[str, Any]]:
    """Conditions to write: keep lastTransitionTime when a condition's status did not change, and
    keep condition types this gateway does not own (another controller may set them)."""
    old = {c.get("type"): c for c in existing or () if isinstance(c, dict)}
    merged: list[dict[str, Any]] = []
    for cond in new:
        out = cond.to_dict()
        previous = old.pop(cond.type, None)
        if previous is not None and previous.get("status") == out["status"]:
            out["lastTransitionTime"] = previous.get("lastTransitionTime", out["lastTransitionTime"])
        merged.append(out)
    merged.extend(old.values())
    return merged
