"""Status conditions the leader writes on InferenceModels and the InferencePool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes import client as k8s

from inference_gateway.datastore.store import Datastore
from inference_gateway.sources.kubernetes import KubernetesController
from tests.doubles.kube_apiserver import FakeKubeAPIServer

from . import objects as o
from .conftest import eventually, options


def conditions(
    server: FakeKubeAPIServer, api_version: str, kind: str, name: str
) -> dict[str, dict[str, Any]]:
    obj = server.get(api_version, kind, o.NS, name)
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def accepted(server: FakeKubeAPIServer, name: str) -> tuple[str, str] | None:
    cond = conditions(server, o.X_API, "InferenceModel", name).get("Accepted")
    return (cond["status"], cond["reason"]) if cond else None


def parents(server: FakeKubeAPIServer) -> list[dict[str, Any]]:
    return (server.get(o.POOL_API, "InferencePool", o.NS, "llm").get("status") or {}).get("parents") or []


def parent_summary(server: FakeKubeAPIServer) -> dict[str, tuple[tuple[str, str, str], ...]]:
    return {
        p["parentRef"]["name"]: tuple(sorted((c["type"], c["status"], c["reason"]) for c in p["conditions"]))
        for p in parents(server)
    }


@pytest.fixture
async def leader(apiserver: FakeKubeAPIServer, api: k8s.ApiClient) -> AsyncIterator[KubernetesController]:
    ctl = KubernetesController(Datastore(), options(), api)
    await ctl.start()
    yield ctl
    await ctl.stop()


async def test_model_conditions(apiserver: FakeKubeAPIServer, leader: KubernetesController) -> None:
    apiserver.apply(o.model("chat", "llama", created="2025-01-01T00:00:00Z"))
    apiserver.apply(o.model("elsewhere", "mistral", pool_name="another-pool"))
    await eventually(
        lambda: accepted(apiserver, "chat") == ("Unknown", "Pending"), what="Pending without a pool"
    )

    apiserver.apply(o.pool())
    await eventually(lambda: accepted(apiserver, "chat") == ("True", "Accepted"), what="Accepted")
    apiserver.apply(o.model("dup", "llama", created="2025-03-01T00:00:00Z"))
    await eventually(lambda: accepted(apiserver, "dup") == ("False", "ModelNameInUse"), what="ModelNameInUse")
    cond = conditions(apiserver, o.X_API, "InferenceModel", "chat")["Accepted"]
    assert cond["observedGeneration"] == 1 and cond["lastTransitionTime"].endswith("Z")

    apiserver.remove(o.X_API, "InferenceModel", o.NS, "chat")
    await eventually(
        lambda: accepted(apiserver, "dup") == ("True", "Accepted"), what="dup accepted once free"
    )
    assert accepted(apiserver, "elsewhere") is None, "models of other pools belong to their own EPP"


async def test_conditions_are_not_rewritten_when_unchanged(
    apiserver: FakeKubeAPIServer, leader: KubernetesController
) -> None:
    apiserver.apply(o.pool())
    apiserver.apply(o.service("llm-epp"))
    apiserver.apply(o.model("chat", "llama"))
    await eventually(lambda: accepted(apiserver, "chat") == ("True", "Accepted"))
    # Let the first reconcile (pool and model status) finish before counting writes.
    await eventually(lambda: leader._status_task is None or leader._status_task.done(), what="reconcile idle")
    stamp = conditions(apiserver, o.X_API, "InferenceModel", "chat")["Accepted"]["lastTransitionTime"]
    writes = leader.status_writes
    for i in range(5):  # unrelated churn triggers reconciles that must find nothing to do
        apiserver.apply(o.pod(f"p{i}", f"10.1.0.{i}"))
    await eventually(lambda: len(leader.store.endpoints()) == 5)
    await eventually(lambda: leader._status_task is None or leader._status_task.done(), what="reconcile idle")
    assert leader.status_writes == writes
    assert conditions(apiserver, o.X_API, "InferenceModel", "chat")["Accepted"]["lastTransitionTime"] == stamp


async def test_pool_parent_conditions(apiserver: FakeKubeAPIServer, leader: KubernetesController) -> None:
    apiserver.apply(o.pool())
    apiserver.apply(o.service("llm-epp"))
    await leader.wait_synced()
    await eventually(lambda: leader.status_writes > 0 or parents(apiserver) == [], what="first reconcile")
    assert parents(apiserver) == [], "no HTTPRoute: not associated with any parent"

    apiserver.apply(o.route("r1", "gw-accepted", accepted="True"))
    apiserver.apply(o.route("r2", "gw-pending"))
    apiserver.apply(o.route("r3", "gw-rejected", accepted="False"))
    apiserver.apply(o.route("unrelated", "gw-other", pool_name="another-pool", accepted="True"))
    want = {
        "gw-accepted": (("Accepted", "True", "Accepted"), ("ResolvedRefs", "True", "ResolvedRefs")),
        "gw-pending": (("Accepted", "Unknown", "Pending"), ("ResolvedRefs", "True", "ResolvedRefs")),
        "gw-rejected": (
            ("Accepted", "False", "HTTPRouteNotAccepted"),
            ("ResolvedRefs", "True", "ResolvedRefs"),
        ),
    }
    await eventually(lambda: parent_summary(apiserver) == want, what="one parent per Gateway")
    ref = next(p["parentRef"] for p in parents(apiserver) if p["parentRef"]["name"] == "gw-accepted")
    assert ref == {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "namespace": o.NS,
        "name": "gw-accepted",
    }

    apiserver.remove("v1", "Service", o.NS, "llm-epp")  # the EPP Service goes away
    apiserver.apply(o.pool(ports=(8000, 8001)))  # any change makes the leader look again
    await eventually(
        lambda: (
            parent_summary(apiserver).get("gw-accepted", ())[-1:]
            == (("ResolvedRefs", "False", "InvalidExtensionRef"),)
        ),
        what="InvalidExtensionRef",
    )
    generation = apiserver.get(o.POOL_API, "InferencePool", o.NS, "llm")["metadata"]["generation"]
    assert generation == 2
    await eventually(
        lambda: all(c["observedGeneration"] == 2 for p in parents(apiserver) for c in p["conditions"]),
        what="observedGeneration follows the spec",
    )

    apiserver.remove("gateway.networking.k8s.io/v1", "HTTPRoute", o.NS, "r2")
    await eventually(lambda: "gw-pending" not in parent_summary(apiserver), what="parent entry removed")
