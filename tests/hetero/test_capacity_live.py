"""End to end without Envoy: simulated H100 and L4 servers over HTTP, the EPP's scraper, and
capacity-load-scorer learning their decode speeds from the scraped latency histograms."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from inference_gateway.api.types import ObjectRef
from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.datastore.store import Datastore
from inference_gateway.metrics.extract import ITL_REFRESH_S
from inference_gateway.metrics.scraper import Scraper
from inference_gateway.scheduling.plugins.capacity_load_scorer import CapacityLoadScorer
from inference_gateway.scheduling.types import CycleState, SchedulingRequest
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.server import SimulatedServer

MODEL = "meta-llama/Llama-2-7b-hf"


@pytest.fixture
async def servers() -> AsyncIterator[list[SimulatedServer]]:
    fleet = [
        # The latency histograms are in model time, but a late event loop stretches model
        # steps (the driver resyncs past 5 ms of wall-clock lag): keep steps long enough in wall
        # time that a busy test machine barely moves them.
        SimulatedServer(ServerConfig(profile=profile, time_scale=0.25))
        for profile in ("h100-llama2-7b", "l4-llama2-7b")
    ]
    for s in fleet:
        await s.start()
    try:
        yield fleet
    finally:
        for s in fleet:
            await s.stop()


async def load(session: aiohttp.ClientSession, server: SimulatedServer, n: int) -> None:
    async def one(i: int) -> None:
        body = {"model": MODEL, "prompt": f"request {i}", "max_tokens": 30}
        async with session.post(f"{server.url}/v1/completions", json=body) as resp:
            assert resp.status == 200
            await resp.read()

    await asyncio.gather(*(one(i) for i in range(n)))


async def test_scraped_histograms_give_each_server_its_speed(servers: list[SimulatedServer]) -> None:
    endpoints = [
        Endpoint(f"s{i}", ObjectRef("default", f"s{i}"), "127.0.0.1", s.port, {})
        for i, s in enumerate(servers)
    ]
    scraper = Scraper(Datastore())
    scorer = CapacityLoadScorer(parameters={"windowSeconds": 0})
    request = SchedulingRequest("r", MODEL, MODEL)
    try:
        for e in endpoints:
            assert await scraper.scrape_endpoint(e)
        scorer.score(CycleState(), request, endpoints)  # opens each endpoint's window
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(load(session, s, 4) for s in servers))
        await asyncio.sleep(ITL_REFRESH_S)  # the scraper re-reads histogram totals this often
        for e in endpoints:
            assert await scraper.scrape_endpoint(e)
        scores = scorer.score(CycleState(), request, endpoints)
    finally:
        await scraper.stop()
    h100, l4 = (scorer.speed(e.address) for e in endpoints)
    assert h100 is not None and l4 is not None
    # Decode steps: ~5.6-6.4 ms on the H100 profile (~165 tokens/s), ~47-50 ms on the L4 (~20);
    # event-loop lag can only lengthen steps, so the bounds below are one-sided where it matters.
    assert 60 < h100 < 200 and 12 < l4 < 25
    assert 3 < h100 / l4 < 12
    assert scores[0] == 1.0 and scores[1] == pytest.approx(l4 / h100)  # both idle: the speed ratio
