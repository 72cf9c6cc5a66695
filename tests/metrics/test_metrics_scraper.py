"""The scraper against real HTTP /metrics servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import orjson
import pytest
from fake_engine import FakeEngine, store_for_ports

from inference_gateway.api.manifests import ResourceSet
from inference_gateway.metrics.mappings import ENGINE_LABEL
from inference_gateway.metrics.scraper import ScrapeConfig, Scraper
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config


@pytest.fixture
async def engines() -> AsyncIterator[list[FakeEngine]]:
    fleet = [FakeEngine(waiting=i, running=2 * i, kv=0.1 * i) for i in range(3)]
    for e in fleet:
        await e.start()
    yield fleet
    for e in fleet:
        await e.stop()


def ports(fleet: list[FakeEngine]) -> list[int]:
    return [e.server.port for e in fleet if e.server is not None and e.server.port is not None]


async def wait_for(cond: Callable[[], bool], within_s: float = 3.0) -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_scrape_once_reads_every_endpoint(engines: list[FakeEngine]) -> None:
    store = store_for_ports(ports(engines))
    scraper = Scraper(store)
    try:
        await scraper.scrape_once()
    finally:
        await scraper.stop()
    by_port = {e.port: e.metrics for e in store.endpoints()}
    for i, engine in enumerate(engines):
        m = by_port[ports(engines)[i]]
        assert (m.waiting_queue, m.running_requests) == (engine.waiting, engine.running)
        assert m.kv_cache_usage == pytest.approx(engine.kv)
        assert m.served_models == {"base-model"}
    assert all(e.metrics_ok for e in store.endpoints())


async def test_connections_are_kept_alive(engines: list[FakeEngine]) -> None:
    store = store_for_ports(ports(engines)[:1])
    scraper = Scraper(store)
    try:
        for _ in range(5):
            await scraper.scrape_once()
    finally:
        await scraper.stop()
    assert engines[0].requests == 5
    assert len(engines[0].peers) == 1


async def test_failing_endpoint_excluded_after_threshold_then_recovers(engines: list[FakeEngine]) -> None:
    store = store_for_ports(ports(engines)[:1])
    scraper = Scraper(store, ScrapeConfig(failure_threshold=3))
    (endpoint,) = store.endpoints()
    try:
        await scraper.scrape_once()
        engines[0].status = 503
        for expected_ok in (True, True, False):
            await scraper.scrape_once()
            assert endpoint.metrics_ok is expected_ok
        engines[0].status = 200
        engines[0].waiting = 11
        await scraper.scrape_once()
    finally:
        await scraper.stop()
    assert endpoint.metrics_ok
    assert endpoint.metrics.waiting_queue == 11
    assert endpoint.metrics.scrape_failures == 0


async def test_metrics_older_than_threshold_are_stale(engines: list[FakeEngine]) -> None:
    store = store_for_ports(ports(engines)[:1])
    scraper = Scraper(store, ScrapeConfig(stale_after_s=2.0))
    try:
        await scraper.scrape_once()
    finally:
        await scraper.stop()
    (endpoint,) = store.endpoints()
    scraper.refresh_health(now=time.monotonic() + 1.0)
    assert endpoint.metrics_ok
    scraper.refresh_health(now=time.monotonic() + 2.5)
    assert not endpoint.metrics_ok


async def test_engine_label_selects_mapping() -> None:
    engine = FakeEngine()
    port = await engine.start()
    engine.page = lambda: "sglang:num_queue_reqs 6\nsglang:token_usage 0.5\nvllm:num_requests_waiting 1\n"  # type: ignore[method-assign]
    store = store_for_ports([port], labels={ENGINE_LABEL: "sglang"})
    scraper = Scraper(store)
    try:
        await scraper.scrape_once()
    finally:
        await scraper.stop()
        await engine.stop()
    (endpoint,) = store.endpoints()
    assert (endpoint.metrics.waiting_queue, endpoint.metrics.kv_cache_usage) == (6, 0.5)


async def test_background_polling_is_not_held_up_by_a_hanging_endpoint(engines: list[FakeEngine]) -> None:
    engines[0].hang_s = 5.0
    store = store_for_ports(ports(engines))
    scraper = Scraper(store, ScrapeConfig(interval_s=0.02, timeout_s=0.5))
    await scraper.start()
    try:
        await wait_for(lambda: engines[1].requests >= 5 and engines[2].requests >= 5, within_s=2.0)
        assert engines[0].requests == 1  # still waiting on its first scrape
        engines[2].waiting = 42
        target = next(e for e in store.endpoints() if e.port == ports(engines)[2])
        await wait_for(lambda: target.metrics.waiting_queue == 42)
    finally:
        await scraper.stop()


async def test_pollers_follow_datastore_changes(engines: list[FakeEngine]) -> None:
    store = store_for_ports(ports(engines))
    scraper = Scraper(store, ScrapeConfig(interval_s=0.02))
    await scraper.start()
    try:
        await wait_for(lambda: len(scraper._pollers) == 3)
        store.replace_all(ResourceSet())
        await wait_for(lambda: not scraper._pollers)
        before = [e.requests for e in engines]
        await asyncio.sleep(0.1)
        assert [e.requests for e in engines] == before
    finally:
        await scraper.stop()


async def test_director_routes_around_dead_endpoint_and_back(engines: list[FakeEngine]) -> None:
    """Scraper + director: an engine whose /metrics stops answering is excluded, then returns."""
    for e in engines:
        e.waiting, e.kv = 3, 0.3
    engines[0].waiting, engines[0].kv = 0, 0.0  # the best endpoint on paper
    store = store_for_ports(ports(engines))
    cfg = load_config()
    director = Director(store, PoolRuntime(cfg, flow_control=False))
    scraper = Scraper(store, ScrapeConfig(interval_s=0.02, timeout_s=0.3, failure_threshold=3))
    best = f"127.0.0.1:{ports(engines)[0]}"

    async def pick() -> str:
        ctx = director.new_context({})
        raw = orjson.dumps({"model": "base-model", "prompt": "hello"})
        return (await director.route(ctx, raw)).destination.split(",")[0]

    await scraper.start()
    try:
        await wait_for(lambda: all(e.metrics.updated_at for e in store.endpoints()))
        assert await pick() == best
        port = ports(engines)[0]
        await engines[0].stop()
        await wait_for(lambda: not store.endpoint(best).metrics_ok)  # type: ignore[union-attr]
        assert best not in {await pick() for _ in range(5)}
        await engines[0].start(port)
        await wait_for(lambda: store.endpoint(best).metrics_ok)  # type: ignore[union-attr]
        assert await pick() == best
    finally:
        await scraper.stop()
