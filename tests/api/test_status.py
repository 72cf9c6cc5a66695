"""Status conditions computed from the datastore: what the Kubernetes controller will write."""

from __future__ import annotations

import dataclasses

from inference_gateway.api.manifests import parse_yaml
from inference_gateway.api.status import (
    attached_condition,
    merge_conditions,
    model_conditions,
    pool_conditions,
    pool_status,
    pool_status_body,
)
from inference_gateway.api.types import ConditionStatus, ObjectRef, ParentRef
from inference_gateway.datastore.store import Datastore

NOW = "2025-06-01T12:00:00Z"

FLEET = """\
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: pool, generation: 3}
spec:
  selector: {matchLabels: {app: vllm}}
  targetPorts: [{number: 8000}]
  endpointPickerRef: {name: pool-epp, port: {number: 9002}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: newer, creationTimestamp: "2025-05-02T00:00:00Z"}
spec: {modelName: chat, poolRef: {name: pool}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: older, creationTimestamp: "2025-05-01T00:00:00Z", generation: 2}
spec: {modelName: chat, poolRef: {name: pool}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: orphan}
spec: {modelName: chat, poolRef: {name: missing-pool}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: {name: batch}
spec: {priority: -5, poolRef: {name: pool}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: {name: lost}
spec: {priority: 1, poolRef: {name: nowhere}}
"""


def _store() -> tuple[Datastore, object]:
    resources = parse_yaml(FLEET, "fleet.yaml")
    store = Datastore()
    store.replace_all(resources)
    return store, resources


def test_the_oldest_model_keeps_the_name_and_the_others_are_told_why() -> None:
    store, _ = _store()
    conditions = model_conditions(store, now=NOW)
    older = conditions[ObjectRef("default", "older")]
    newer = conditions[ObjectRef("default", "newer")]
    orphan = conditions[ObjectRef("default", "orphan")]
    assert (older.status, older.reason, older.observed_generation) == (ConditionStatus.TRUE, "Accepted", 2)
    assert (newer.status, newer.reason) == (ConditionStatus.FALSE, "ModelNameInUse")
    assert (
        newer.message == "modelName 'chat' is already in use in InferencePool default/pool by older "
        "InferenceModel default/older"
    )
    assert (orphan.status, orphan.reason) == (ConditionStatus.UNKNOWN, "Pending")
    assert "InferencePool default/missing-pool not found" in orphan.message


def test_pool_conditions() -> None:
    _, resources = _store()
    pool = resources.pools[0]
    accepted, resolved = pool_conditions(pool, now=NOW)
    assert (accepted.type, accepted.status, accepted.observed_generation) == (
        "Accepted",
        ConditionStatus.TRUE,
        3,
    )
    assert (resolved.type, resolved.status, resolved.reason) == (
        "ResolvedRefs",
        ConditionStatus.TRUE,
        "ResolvedRefs",
    )

    _, missing = pool_conditions(pool, epp_found=False, now=NOW)
    assert (missing.status, missing.reason) == (ConditionStatus.FALSE, "InvalidExtensionRef")
    assert "Service default/pool-epp not found" in missing.message

    other_kind = dataclasses.replace(
        pool, endpoint_picker=dataclasses.replace(pool.endpoint_picker, kind="Pod")
    )
    _, unsupported = pool_conditions(other_kind, now=NOW)
    assert (unsupported.status, unsupported.reason) == (ConditionStatus.FALSE, "InvalidExtensionRef")


def test_status_body_has_the_shape_of_the_pool_version() -> None:
    _, resources = _store()
    pool = resources.pools[0]
    entry = pool_status(pool, ParentRef("gw", "infra"), now=NOW)
    body = pool_status_body(pool, [entry])
    (parent,) = body["parents"]
    assert parent["parentRef"] == {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": "gw",
        "namespace": "infra",
    }
    assert [c["type"] for c in parent["conditions"]] == ["Accepted", "ResolvedRefs"]
    legacy = dataclasses.replace(pool, api_version="inference.networking.x-k8s.io/v1alpha2")
    assert list(pool_status_body(legacy, [entry])) == ["parent"]


def test_objectives_are_accepted_once_their_pool_exists() -> None:
    store, resources = _store()
    batch, lost = resources.objectives
    assert attached_condition(store, batch, now=NOW).status is ConditionStatus.TRUE
    assert attached_condition(store, lost, now=NOW).reason == "Pending"


def test_merge_keeps_transition_time_until_the_status_changes() -> None:
    store, _ = _store()
    cond = model_conditions(store, now=NOW)[ObjectRef("default", "older")]
    existing = [
        {"type": "Accepted", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"},
        {"type": "Exported", "status": "False", "lastTransitionTime": "2025-01-01T00:00:00Z"},
    ]
    merged = merge_conditions(existing, [cond])
    assert merged[0]["lastTransitionTime"] == "2025-01-01T00:00:00Z"
    assert merged[1]["type"] == "Exported"
    flipped = merge_conditions([{**existing[0], "status": "False"}], [cond])
    assert flipped[0]["lastTransitionTime"] == NOW
