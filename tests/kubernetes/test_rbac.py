"""Upstream's chart RBAC is enough: what it does not grant is skipped (logged once), the EPP
serves; gateway controllers' InferencePool status entries are left alone; --endpoint-selector
serves pods without any InferencePool."""

from __future__ import annotations

import logging

import orjson
import pytest
from kubernetes import client as k8s

from inference_gateway.datastore.store import Datastore
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from inference_gateway.sources.kubernetes import KubernetesController
from inference_gateway.sources.kubernetes.client import GATEWAY_GROUP
from inference_gateway.sources.kubernetes.status import CONTROLLER_NAME
from tests.doubles.kube_apiserver import FakeKubeAPIServer

from . import objects as o
from .conftest import eventually, options

# What upstream v1.5's chart does not grant its EPP (it reads pools, objectives, rewrites, pods).
FORBIDDEN = {"httproutes", "inferencemodels", "services"}


async def test_forbidden_optional_resources_are_skipped_and_the_epp_serves(
    apiserver: FakeKubeAPIServer, api: k8s.ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    apiserver.forbidden |= FORBIDDEN
    apiserver.apply(o.pool())
    apiserver.apply(o.route("r1", "gw", accepted="True"))
    for i in range(2):
        apiserver.apply(o.pod(f"vllm-{i}", f"10.8.0.{i + 1}"))
    store = Datastore()
    controller = KubernetesController(store, options(), api)
    await controller.start()
    try:
        await eventually(lambda: controller.synced, what="sync without the forbidden kinds")
        await eventually(lambda: len(store.endpoints()) == 2, what="pods")
        director = Director(store, PoolRuntime(load_config(), flow_control=False))
        decision = await director.route(director.new_context({}), orjson.dumps({"model": "m", "prompt": "x"}))
        assert decision.destination.split(",")[0] in {"10.8.0.1:8000", "10.8.0.2:8000"}
        await eventually(lambda: apiserver.count("inferencemodels") >= 3, what="a later retry", within=5)
    finally:
        await controller.stop()
    skipped = [r.getMessage() for r in caplog.records if "forbidden" in r.getMessage()]
    # once per forbidden kind the controller lists (HTTPRoutes, InferenceModels), never per retry
    assert len(skipped) == 2, skipped


async def test_forbidden_status_writes_stop_after_one_try(
    apiserver: FakeKubeAPIServer, api: k8s.ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    apiserver.forbidden.add("inferencepools/status")
    apiserver.apply(o.pool())
    apiserver.apply(o.service("llm-epp"))
    apiserver.apply(o.route("r1", "gw", accepted="True"))
    controller = KubernetesController(Datastore(), options(status_resync_s=0.05), api)
    await controller.start()
    try:
        await eventually(lambda: not controller.options.write_status, what="status writes switched off")
        await eventually(lambda: apiserver.count("inferencemodels") >= 2, what="time passing")
    finally:
        await controller.stop()
    assert apiserver.count("/status", method="PATCH") == 1
    assert len([r for r in caplog.records if "status updates are off" in r.getMessage()]) == 1


async def test_gateway_controllers_status_entries_are_kept(
    apiserver: FakeKubeAPIServer, api: k8s.ApiClient
) -> None:
    theirs = {
        "parentRef": {"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": o.NS, "name": "gw-a"},
        "controllerName": "example.com/gateway-controller",
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "theirs",
                        "lastTransitionTime": "2025-01-01T00:00:00Z", "observedGeneration": 1}],
    }  # fmt: skip
    pool = o.pool()
    pool["status"] = {"parents": [theirs]}
    apiserver.apply(pool)
    apiserver.apply(o.service("llm-epp"))
    apiserver.apply(o.route("ra", "gw-a", accepted="True"))
    apiserver.apply(o.route("rb", "gw-b", accepted="True"))
    controller = KubernetesController(Datastore(), options(), api)
    await controller.start()
    try:

        def parents() -> list[dict]:
            obj = apiserver.get(o.POOL_API, "InferencePool", o.NS, "llm")
            return (obj.get("status") or {}).get("parents") or []

        await eventually(lambda: len(parents()) == 2, what="our entry next to theirs")
        by_gateway = {p["parentRef"]["name"]: p for p in parents()}
        assert by_gateway["gw-a"] == theirs
        assert by_gateway["gw-b"]["controllerName"] == CONTROLLER_NAME
    finally:
        await controller.stop()


async def test_endpoint_selector_serves_pods_without_an_inferencepool(
    apiserver: FakeKubeAPIServer, api: k8s.ApiClient
) -> None:
    apiserver.apply(o.pod("a", "10.7.0.1", app="qwen", env="prod"))
    apiserver.apply(o.pod("b", "10.7.0.2", app="qwen", env="dev"))
    apiserver.apply(o.pod("c", "10.7.0.3", app="other", env="prod"))
    store = Datastore()
    opts = options(pool_name="", endpoint_selector="app=qwen,env=prod", endpoint_target_ports=(8000, 8001))
    controller = KubernetesController(store, opts, api)
    await controller.start()
    try:
        await eventually(lambda: controller.synced and store.endpoints(), what="selected pods")
        assert sorted(e.address for e in store.endpoints()) == ["10.7.0.1:8000", "10.7.0.1:8001"]
        assert apiserver.count("inferencepools") == 0  # no InferencePool is read, none written
    finally:
        await controller.stop()
