"""The model inventory (GET /v1/models) and served-model-filter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import aiohttp
import orjson
import pytest
from fake_engine import store_for_ports

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.metrics.inventory import (
    SERVED_MODELS,
    InventoryConfig,
    ModelInventory,
    ServedModels,
    parse_model_list,
    served_models,
)
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.plugins.served_model_filter import ServedModelFilter
from inference_gateway.scheduling.types import CycleState, SchedulingRequest
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.server import SimulatedServer

BASE = "tiny-llama"
# What vLLM 0.32 answers with one adapter loaded (permission entries trimmed).
VLLM_MODELS = {
    "object": "list",
    "data": [
        {"id": BASE, "object": "model", "created": 1, "owned_by": "vllm", "root": "/models/base",
         "parent": None, "max_model_len": 512, "permission": [{"id": "modelperm-1"}]},
        {"id": "sql-lora", "object": "model", "created": 1, "owned_by": "vllm", "root": "/models/sql",
         "parent": BASE, "max_model_len": None, "permission": [{"id": "modelperm-2"}]},
    ],
}  # fmt: skip


def test_parse_model_list_splits_base_models_and_adapters() -> None:
    served = parse_model_list(orjson.dumps(VLLM_MODELS), now=1.0)
    assert served.base == {BASE}
    assert served.adapters == {"sql-lora": BASE}
    assert served.serves("sql-lora") and served.serves(BASE) and not served.serves("other")
    with pytest.raises(ValueError, match="'data'"):
        parse_model_list(b'{"models": []}', now=1.0)


def _endpoint(name: str, served: ServedModels | None, max_lora: int | None = 1) -> Endpoint:
    store = store_for_ports([8000])
    (e,) = store.endpoints()
    e.name = name
    e.metrics.max_active_adapters = max_lora
    if served is not None:
        e.attributes[SERVED_MODELS] = served
    return e


def _request(model: str) -> SchedulingRequest:
    return SchedulingRequest("r", model, model)


def _names(endpoints: Any) -> list[str]:
    return [e.name for e in endpoints]


WITH = ServedModels(frozenset({BASE}), {"sql-lora": BASE})
WITHOUT = ServedModels(frozenset({BASE}), {})


def test_filter_keeps_only_servers_listing_the_adapter() -> None:
    eps = [_endpoint("with", WITH), _endpoint("without", WITHOUT), _endpoint("unknown", None)]
    strict = ServedModelFilter()
    assert _names(strict.filter(CycleState(), _request("sql-lora"), eps)) == ["with"]
    assert _names(strict.filter(CycleState(), _request(BASE), eps)) == ["with", "without"]
    # Nobody known to have it (e.g. loaded a moment ago): the unknown ones, else everyone.
    assert _names(strict.filter(CycleState(), _request("new-lora"), eps)) == ["unknown"]
    assert _names(strict.filter(CycleState(), _request("new-lora"), eps[:2])) == ["with", "without"]


def test_metrics_alone_do_not_rule_out_servers_whose_list_is_unknown() -> None:
    # No list read anywhere (an inventory that cannot read /v1/models): a pod running the
    # adapter must not become its only server, or its queue grows without bound.
    running = _endpoint("running", None)
    running.metrics.active_adapters = frozenset({"sql-lora"})
    eps = [running, _endpoint("unknown", None), _endpoint("without", WITHOUT)]
    strict = ServedModelFilter()
    assert _names(strict.filter(CycleState(), _request("sql-lora"), eps)) == ["running", "unknown"]
    # Once some list names it, a pod whose list is not read yet (just added) waits for its list.
    eps.append(_endpoint("with", WITH))
    assert _names(strict.filter(CycleState(), _request("sql-lora"), eps)) == ["running", "with"]


def test_dynamic_loading_also_keeps_servers_with_a_free_adapter_slot() -> None:
    eps = [_endpoint("with", WITH), _endpoint("room", WITHOUT), _endpoint("full", WITHOUT, max_lora=0)]
    dynamic = ServedModelFilter(parameters={"dynamicLoading": True})
    assert _names(dynamic.filter(CycleState(), _request("sql-lora"), eps)) == ["with", "room"]
    with pytest.raises(ValueError, match="unknown parameter"):
        ServedModelFilter(parameters={"dynamic": True})


def test_every_profile_gets_the_filter_unless_the_config_places_it() -> None:
    implicit = load_config()
    assert all(isinstance(p.filters[0], ServedModelFilter) for p in implicit.scheduler.profiles.values())
    explicit = load_config(
        "plugins:\n- type: served-model-filter\n- type: queue-scorer\n"
        "schedulingProfiles:\n- name: default\n  plugins: [{pluginRef: queue-scorer}]\n"
    )
    assert not explicit.scheduler.profiles["default"].filters


async def _wait(cond: Callable[[], bool], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_start_reads_the_known_servers_lists_before_returning() -> None:
    server = SimulatedServer(
        ServerConfig(served_model_name=BASE, lora_adapters=["sql-lora"], time_scale=0.01)
    )
    await server.start("127.0.0.1", 0)
    store = store_for_ports([server.port])
    (endpoint,) = store.endpoints()
    inventory = ModelInventory(store, InventoryConfig(interval_s=600))
    try:
        await inventory.start()  # the EPP serves only after this: its first request knows the lists
        assert served_models(endpoint) == ServedModels(frozenset({BASE}), {"sql-lora": BASE})
    finally:
        await inventory.stop()
        await server.stop()


async def test_inventory_follows_runtime_adapter_loading_on_a_404() -> None:
    server = SimulatedServer(
        ServerConfig(served_model_name=BASE, lora_adapters=["sql-lora"], time_scale=0.01)
    )
    await server.start("127.0.0.1", 0)
    store = store_for_ports([server.port])
    (endpoint,) = store.endpoints()
    # A slow interval: only the 404 below can explain a re-read within the test.
    inventory = ModelInventory(store, InventoryConfig(interval_s=600, min_refresh_gap_s=0.01))
    try:
        await inventory.start()
        await _wait(lambda: served_models(endpoint) is not None)
        assert served_models(endpoint) == ServedModels(frozenset({BASE}), {"sql-lora": BASE})
        async with aiohttp.ClientSession() as s:
            body = {"lora_name": "new-lora", "lora_path": "/adapters/new"}
            async with s.post(f"{server.url}/v1/load_lora_adapter", json=body) as r:
                assert r.status == 200
        assert not served_models(endpoint).serves("new-lora")  # type: ignore[union-attr]
        inventory.on_complete(SimpleNamespace(response_status=404, served=endpoint))  # type: ignore[arg-type]
        await _wait(lambda: served_models(endpoint).serves("new-lora"))  # type: ignore[union-attr]
        await server.stop()
        inventory.on_complete(SimpleNamespace(response_status=404, served=endpoint))  # type: ignore[arg-type]
        await _wait(lambda: served_models(endpoint) is None)  # unreadable: unknown again
    finally:
        await inventory.stop()
        await server.stop()
