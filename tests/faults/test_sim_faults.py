"""The simulator's fault injection (simulator/faults.py), on an in-process server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from inference_gateway.simulator.cli import app
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.faults import FaultInjector, FaultSpecError, parse_fault
from inference_gateway.simulator.server import SimulatedServer

BODY = {"prompt": "hello there", "max_tokens": 6}


@pytest.mark.parametrize(
    "spec", ["error500", "error503:0.25", "hang", "hang:0.5", "die-after-tokens:3", "metrics-garbage"]
)
def test_fault_specs_round_trip(spec: str) -> None:
    assert str(parse_fault(spec)) == spec


@pytest.mark.parametrize(
    "spec",
    ["error200", "error500:2", "error500:x", "die-after-tokens", "stall-after-tokens:0", "metrics-down:1"],
)
def test_bad_fault_specs_are_rejected(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_fault(spec)


def test_error_probability_is_honoured() -> None:
    injector = FaultInjector(["error500:0.3"], seed=1)
    statuses = [injector.for_request().status for _ in range(2000)]
    assert set(statuses) == {0, 500}
    assert 0.25 < statuses.count(500) / len(statuses) < 0.35
    assert FaultInjector(["error500:0"]).for_request().status == 0


def test_a_bad_replacement_keeps_the_current_faults() -> None:
    injector = FaultInjector(["hang"])
    with pytest.raises(FaultSpecError):
        injector.replace(["error500", "nonsense"])
    assert injector.describe() == ["hang"]


def test_cli_rejects_an_unknown_fault() -> None:
    out = CliRunner().invoke(app, ["--fault", "explode"])
    assert out.exit_code != 0
    assert "unknown fault" in out.output


@pytest.fixture
async def server() -> AsyncIterator[SimulatedServer]:
    s = SimulatedServer(ServerConfig(time_scale=0.05, faults=["error503"]))
    await s.start("127.0.0.1", 0)
    try:
        yield s
    finally:
        await s.stop()


async def _call(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    async with session.request(method, url, json=body) as r:
        raw = await r.read()
        try:
            return r.status, await r.json(content_type=None)
        except ValueError:
            return r.status, raw


async def test_faults_set_at_start_and_changed_at_runtime(server: SimulatedServer) -> None:
    url = server.url
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        status, body = await _call(s, "POST", f"{url}/v1/completions", BODY)
        assert status == 503 and body["error"]["message"].startswith("injected fault")

        assert await _call(s, "GET", f"{url}/admin/faults") == (200, {"faults": ["error503"]})
        status, body = await _call(s, "POST", f"{url}/admin/faults", {"faults": ["bogus"]})
        assert status == 400 and "unknown fault" in body["error"]["message"]
        status, body = await _call(s, "POST", f"{url}/admin/faults", {"faults": "hang"})
        assert status == 400

        await _call(s, "POST", f"{url}/admin/faults", {"faults": ["metrics-down"]})
        assert (await _call(s, "GET", f"{url}/metrics"))[0] == 503
        assert (await _call(s, "POST", f"{url}/v1/completions", BODY))[0] == 200
        await _call(s, "POST", f"{url}/admin/faults", {"faults": ["metrics-garbage"]})
        status, page = await _call(s, "GET", f"{url}/metrics")
        assert status == 200 and b"vllm:" not in page

        assert await _call(s, "DELETE", f"{url}/admin/faults") == (200, {"faults": []})
        status, page = await _call(s, "GET", f"{url}/metrics")
        assert status == 200 and b"vllm:num_requests_waiting" in page


async def test_hang_and_stall_hold_the_response_until_the_client_leaves(server: SimulatedServer) -> None:
    url = server.url
    async with aiohttp.ClientSession() as s:
        await _call(s, "POST", f"{url}/admin/faults", {"faults": ["hang"]})
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(_call(s, "POST", f"{url}/v1/completions", BODY), 0.5)

        await _call(s, "POST", f"{url}/admin/faults", {"faults": ["stall-after-tokens:2"]})
        async with s.post(f"{url}/v1/completions", json=BODY | {"stream": True, "max_tokens": 20}) as r:
            assert r.status == 200
            first = await r.content.readuntil(b"\n\n")
            assert b"text_completion" in first
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(r.read(), 0.5)

        await _call(s, "DELETE", f"{url}/admin/faults")
        assert (await _call(s, "POST", f"{url}/v1/completions", BODY))[0] == 200
    # The abandoned requests were aborted, not left running in the engine.
    await asyncio.sleep(0.1)
    assert not server.engine.has_work()
