"""The in-test API server speaks the protocol the official client expects."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import watch

from tests.doubles.kube_apiserver import FakeKubeAPIServer
from tests.doubles.kube_store import label_matcher

from . import objects as o


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("app=vllm", {"app": "vllm"}, True),
        ("app==vllm,tier!=canary", {"app": "vllm", "tier": "canary"}, False),
        ("app in (vllm, sglang)", {"app": "sglang"}, True),
        ("app notin (vllm),gpu", {"app": "tgi", "gpu": "h100"}, True),
        ("!gpu", {"gpu": "h100"}, False),
        ("", {}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert label_matcher(selector)({"metadata": {"labels": labels}}) is matches


def _events(api: k8s.ApiClient, rv: str, selector: str, stop_after: int) -> list[tuple[str, Any]]:
    core = k8s.CoreV1Api(api)
    seen: list[tuple[str, Any]] = []
    w = watch.Watch(return_type="object")
    for event in w.stream(
        core.list_namespaced_pod,
        o.NS,
        label_selector=selector,
        resource_version=rv,
        allow_watch_bookmarks=True,
        timeout_seconds=5,
    ):
        seen.append((event["type"], event["raw_object"]["metadata"].get("name")))
        if len(seen) >= stop_after:
            w.stop()
    return seen


def test_watch_sends_selector_transitions_and_bookmarks(
    apiserver: FakeKubeAPIServer, api: k8s.ApiClient
) -> None:
    core = k8s.CoreV1Api(api)
    apiserver.apply(o.pod("a", "10.0.0.1"))
    listed = core.list_namespaced_pod(o.NS, label_selector="app=vllm")
    assert [p.metadata.name for p in listed.items] == ["a"]

    def script() -> None:
        apiserver.apply(o.pod("a", "10.0.0.1", app="other"))  # leaves the selector: DELETED
        apiserver.apply(o.pod("b", "10.0.0.2", app="other"))  # never matches: nothing
        apiserver.apply(o.pod("b", "10.0.0.2"))  # enters the selector: ADDED
        apiserver.apply(o.pod("b", "10.0.0.3"))  # MODIFIED
        apiserver.remove("v1", "Pod", o.NS, "b")  # DELETED

    threading.Timer(0.05, script).start()
    seen = _events(api, listed.metadata.resource_version, "app=vllm", stop_after=6)
    changes = [e for e in seen if e[0] != "BOOKMARK"]
    assert changes[:4] == [("DELETED", "a"), ("ADDED", "b"), ("MODIFIED", "b"), ("DELETED", "b")]
    assert ("BOOKMARK", None) in seen


def test_compacted_history_answers_410(apiserver: FakeKubeAPIServer, api: k8s.ApiClient) -> None:
    apiserver.apply(o.pod("a", "10.0.0.1"))
    rv = k8s.CoreV1Api(api).list_namespaced_pod(o.NS).metadata.resource_version
    apiserver.apply(o.pod("b", "10.0.0.2"))
    apiserver.compact()
    with pytest.raises(k8s.ApiException) as info:
        _events(api, rv, "", stop_after=1)
    assert info.value.status == 410


def test_optimistic_concurrency_and_status_subresource(
    apiserver: FakeKubeAPIServer, api: k8s.ApiClient
) -> None:
    custom = k8s.CustomObjectsApi(api)
    group, version = o.X_API.split("/")
    created = custom.create_namespaced_custom_object(
        group, version, o.NS, "inferencemodels", o.model("m", "x")
    )
    stale = dict(created)
    created["spec"]["modelName"] = "y"
    updated = custom.replace_namespaced_custom_object(group, version, o.NS, "inferencemodels", "m", created)
    assert updated["metadata"]["generation"] == 2
    with pytest.raises(k8s.ApiException) as info:
        custom.replace_namespaced_custom_object(group, version, o.NS, "inferencemodels", "m", stale)
    assert info.value.status == 409

    body = {
        "status": {"conditions": [{"type": "Accepted", "status": "True"}]},
        "spec": {"modelName": "ignored"},
    }
    patched = custom.patch_namespaced_custom_object_status(group, version, o.NS, "inferencemodels", "m", body)
    assert patched["status"]["conditions"][0]["status"] == "True"
    assert patched["spec"]["modelName"] == "y", "the status subresource does not change spec"
    assert patched["metadata"]["generation"] == 2
