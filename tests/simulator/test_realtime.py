"""The real-time driver: model-time pacing and requests that race a step's end."""

from __future__ import annotations

import asyncio
import time

import pytest

from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.engine import Engine
from inference_gateway.simulator.profile import load_profile
from inference_gateway.simulator.realtime import RealtimeDriver
from inference_gateway.simulator.sequence import Sequence


def _driver(time_scale: float) -> RealtimeDriver:
    profile = load_profile("h100-llama2-7b")
    return RealtimeDriver(Engine(ServerConfig().resolve(profile), profile), time_scale)


async def test_request_stamped_after_the_last_step_end_is_still_scheduled() -> None:
    """The loop wakes late (blocked), a request lands after the model-time end of the
    last step while the engine is otherwise empty: it must run, not wait forever."""
    driver = _driver(time_scale=1.0)
    driver.start()
    loop = asyncio.get_running_loop()
    try:
        first = driver.submit("a", 1, 1)
        await asyncio.sleep(0)  # the driver schedules the one-step request
        step = driver.engine.profile.step_seconds(1, 1, False)
        deadline = loop.time() + first.arrival + step - driver.now()
        late: list[Sequence] = []
        submitted = asyncio.Event()

        def block_then_submit() -> None:
            time.sleep(0.003)  # hold the loop past the step's deadline
            late.append(driver.submit("b", 1, 2))
            submitted.set()

        loop.call_at(deadline - 0.001, block_then_submit)
        await asyncio.wait_for(driver.wait_done(first), 1.0)
        await asyncio.wait_for(submitted.wait(), 1.0)
        second = late[0]
        assert second.arrival > first.finish_time
        await asyncio.wait_for(driver.wait_done(second), 1.0)
    finally:
        await driver.stop()


async def test_model_time_runs_at_time_scale() -> None:
    driver = _driver(time_scale=0.25)
    driver.start()
    loop = asyncio.get_running_loop()
    try:
        t0 = loop.time()
        seq = driver.submit("a", 100, 40)
        await driver.wait_done(seq)
        wall = loop.time() - t0
        model = seq.finish_time - seq.arrival
        assert wall == pytest.approx(model * 0.25, rel=0.2)
    finally:
        await driver.stop()
