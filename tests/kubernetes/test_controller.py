"""The controller keeps one pool correct through scripted pod and CRD changes.

Everything runs against the in-test API server through the unmodified `kubernetes` client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes import client as k8s

from inference_gateway.api.types import ObjectRef
from inference_gateway.datastore.store import Datastore
from inference_gateway.sources.kubernetes import KubernetesController, run_controller
from tests.doubles.kube_apiserver import FakeKubeAPIServer

from . import objects as o
from .conftest import eventually, options

POOL = ObjectRef(o.NS, "llm")


@pytest.fixture
async def controller(apiserver: FakeKubeAPIServer, api: k8s.ApiClient) -> AsyncIterator[KubernetesController]:
    ctl = KubernetesController(Datastore(), options(leader_election=False), api)
    await ctl.start()
    yield ctl
    await ctl.stop()


def addresses(store: Datastore) -> set[str]:
    view = store.pool(POOL)
    return {e.address for e in view.endpoints} if view else set()


async def test_pod_lifecycle(apiserver: FakeKubeAPIServer, controller: KubernetesController) -> None:
    store = controller.store
    apiserver.apply(o.pool())
    apiserver.apply(o.pod("a", "10.0.0.1"))
    apiserver.apply(o.pod("b", "10.0.0.2", ready=False))
    apiserver.apply(o.pod("other", "10.0.0.9", app="something-else"))
    await controller.wait_synced()
    await eventually(lambda: addresses(store) == {"10.0.0.1:8000"}, what="only the ready, selected pod")
    assert store.synced

    apiserver.apply(o.pod("b", "10.0.0.2", ready=True))  # becomes Ready
    await eventually(lambda: addresses(store) == {"10.0.0.1:8000", "10.0.0.2:8000"}, what="b joins")

    apiserver.apply(o.pod("a", "10.0.0.1", ready=False))  # loses Ready
    await eventually(lambda: addresses(store) == {"10.0.0.2:8000"}, what="a leaves on unready")

    apiserver.apply(o.pod("c", "10.0.0.3"))  # added
    await eventually(lambda: "10.0.0.3:8000" in addresses(store), what="c added")
    apiserver.remove("v1", "Pod", o.NS, "c")  # deleted
    await eventually(lambda: "10.0.0.3:8000" not in addresses(store), what="c deleted")

    apiserver.apply(o.pod("b", "10.0.0.2", app="moved"))  # labels no longer match
    await eventually(lambda: addresses(store) == set(), what="b relabelled out")
    apiserver.apply(o.pod("other", "10.0.0.9", app="vllm"))  # labels now match
    await eventually(lambda: addresses(store) == {"10.0.0.9:8000"}, what="other relabelled in")

    terminating = o.pod("other", "10.0.0.9")
    terminating["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    apiserver.apply(terminating)
    await eventually(lambda: addresses(store) == set(), what="terminating pod leaves")


async def test_pool_selector_ports_and_deletion(
    apiserver: FakeKubeAPIServer, controller: KubernetesController
) -> None:
    store = controller.store
    apiserver.apply(o.pool(app="vllm"))
    apiserver.apply(o.pod("v", "10.0.1.1", app="vllm"))
    apiserver.apply(o.pod("s", "10.0.1.2", app="sglang"))
    await controller.wait_synced()
    await eventually(lambda: addresses(store) == {"10.0.1.1:8000"})

    apiserver.apply(o.pool(app="sglang"))  # selector change: re-watch with the new selector
    await eventually(lambda: addresses(store) == {"10.0.1.2:8000"}, what="new selector's pods")
    apiserver.apply(o.pod("s2", "10.0.1.3", app="sglang"))
    await eventually(lambda: "10.0.1.3:8000" in addresses(store), what="new selector watched")

    apiserver.apply(o.pool(app="sglang", ports=(8000, 8001)))  # ports change
    await eventually(lambda: len(addresses(store)) == 4, what="two ports per pod")
    assert "10.0.1.2:8001" in addresses(store)

    apiserver.remove(o.POOL_API, "InferencePool", o.NS, "llm")
    await eventually(lambda: store.pool(POOL) is None, what="pool removed")
    assert store.endpoints() == []
    apiserver.apply(o.pool(app="vllm"))
    await eventually(lambda: addresses(store) == {"10.0.1.1:8000"}, what="pool recreated")


async def test_models_objectives_rewrites(
    apiserver: FakeKubeAPIServer, controller: KubernetesController
) -> None:
    store = controller.store
    apiserver.apply(o.pool())
    apiserver.apply(o.model("chat", "llama", created="2025-01-01T00:00:00Z"))
    apiserver.apply(o.objective("critical", 10))
    apiserver.apply(o.rewrite("alias", "gpt-4", "llama"))
    apiserver.apply(o.model("elsewhere", "mistral", pool_name="another-pool"))
    await controller.wait_synced()

    def contents() -> tuple[set[str], ...] | None:
        view = store.pool(POOL)
        return view and (set(view.models), set(view.objectives), set(view.rewrites))

    await eventually(lambda: contents() == ({"llama"}, {"critical"}, {"gpt-4"}), what="all objects")

    apiserver.apply(o.model("dup", "llama", created="2025-02-01T00:00:00Z"))
    await eventually(lambda: store.model_status().get(ObjectRef(o.NS, "dup")) == "ModelNameInUse")
    apiserver.remove(o.X_API, "InferenceModel", o.NS, "chat")
    await eventually(
        lambda: store.model_status().get(ObjectRef(o.NS, "dup")) == "Accepted", what="dup takes over"
    )
    apiserver.remove(o.X_API, "InferenceObjective", o.NS, "critical")
    await eventually(lambda: not store.pool(POOL).objectives, what="objective deleted")  # type: ignore[union-attr]


async def test_invalid_objects_are_ignored(
    apiserver: FakeKubeAPIServer, controller: KubernetesController
) -> None:
    apiserver.apply(o.pool())
    broken = o.model("broken", "x")
    del broken["spec"]["poolRef"]
    apiserver.apply(broken)
    apiserver.apply(o.model("fine", "y"))
    await controller.wait_synced()
    await eventually(lambda: (view := controller.store.pool(POOL)) is not None and set(view.models) == {"y"})
    assert ObjectRef(o.NS, "broken") not in controller.store.model_status()


async def test_resumes_after_dropped_watches(
    apiserver: FakeKubeAPIServer, controller: KubernetesController
) -> None:
    store = controller.store
    apiserver.apply(o.pool())
    apiserver.apply(o.pod("a", "10.0.2.1"))
    await controller.wait_synced()
    await eventually(lambda: addresses(store) == {"10.0.2.1:8000"})
    lists_before = controller.list_counts()
    watches_before = apiserver.count("watch=true")

    apiserver.drop_watches()
    apiserver.apply(o.pod("b", "10.0.2.2"))
    await eventually(lambda: addresses(store) == {"10.0.2.1:8000", "10.0.2.2:8000"}, what="change after drop")
    assert apiserver.count("watch=true") > watches_before, "watches reconnected"
    assert controller.list_counts() == lists_before, "resumed from the last resourceVersion, no relist"


async def test_relists_after_410_gone(apiserver: FakeKubeAPIServer, controller: KubernetesController) -> None:
    store = controller.store
    apiserver.apply(o.pool())
    apiserver.apply(o.pod("a", "10.0.3.1"))
    apiserver.apply(o.pod("b", "10.0.3.2"))
    apiserver.apply(o.model("chat", "llama"))
    await controller.wait_synced()
    await eventually(lambda: len(addresses(store)) == 2)
    lists = controller.list_counts()

    # While every watch is down: a pod and a model vanish and the history is compacted,
    # so resuming gets 410 Gone and only a relist can reveal the deletions.
    with apiserver.store.changed:
        apiserver.drop_watches()
        apiserver.remove("v1", "Pod", o.NS, "a")
        apiserver.remove(o.X_API, "InferenceModel", o.NS, "chat")
        apiserver.compact()
    await eventually(lambda: addresses(store) == {"10.0.3.2:8000"}, what="deleted pod gone after relist")
    await eventually(lambda: not store.pool(POOL).models, what="deleted model gone")  # type: ignore[union-attr]
    await eventually(
        lambda: all(n > lists[kind] for kind, n in controller.list_counts().items()),
        what="every watch relisted",
    )

    apiserver.apply(o.pod("c", "10.0.3.3"))  # and it keeps watching afterwards
    await eventually(lambda: "10.0.3.3:8000" in addresses(store))


async def test_missing_crds_count_as_empty(api: k8s.ApiClient) -> None:
    from tests.doubles.kube_store import DEFAULT_RESOURCES

    served = tuple(r for r in DEFAULT_RESOURCES if r.plural not in ("httproutes", "inferencemodelrewrites"))
    with FakeKubeAPIServer(resources=served, bookmark_interval_s=0.1) as server:
        client = k8s.ApiClient(server.configuration())
        server.apply(o.pool())
        server.apply(o.pod("a", "10.0.4.1"))
        ctl = KubernetesController(Datastore(), options(leader_election=False), client)
        await ctl.start()
        try:
            await ctl.wait_synced()
            await eventually(lambda: addresses(ctl.store) == {"10.0.4.1:8000"})
        finally:
            await ctl.stop()
            client.close()


async def test_run_controller_with_kubeconfig(apiserver: FakeKubeAPIServer, tmp_path: Path) -> None:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig", namespace=o.NS)
    apiserver.apply(o.pool())
    apiserver.apply(o.pod("a", "10.0.5.1"))
    store = Datastore()
    ctl = await run_controller(
        store, "llm", o.NS, kube_config=str(kubeconfig), leader_election=False, timings=options().timings
    )
    try:
        await ctl.wait_synced()
        await eventually(lambda: addresses(store) == {"10.0.5.1:8000"})
    finally:
        await ctl.stop()
