"""Failure handling through the real Envoy: FailClose/FailOpen with the EPP down, dead pods, TLS."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from inference_gateway.local.stack import LocalStack
from tests.conftest import make_config_dir, start_stack

pytestmark = pytest.mark.e2e

BODY = {"model": "meta-llama/Llama-2-7b-hf", "prompt": "hello", "max_tokens": 2}


def failure_mode(mode: str):  # type: ignore[no-untyped-def]
    def edit(doc: dict[str, Any]) -> None:
        if doc["kind"] == "InferencePool":
            doc["spec"]["endpointPickerRef"]["failureMode"] = mode

    return edit


async def post(stack: LocalStack, body: dict[str, Any] = BODY) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with aiohttp.ClientSession() as s, s.post(f"{stack.base_url}/completions", json=body) as r:
        return r.status, await r.json(content_type=None), dict(r.headers)


async def test_fail_close_returns_503_json_quickly_when_epp_is_down(tmp_path: Path) -> None:
    stack = await start_stack(make_config_dir(tmp_path, failure_mode("FailClose")))
    try:
        assert (await post(stack))[0] == 200
        await stack.epp.stop(0)  # type: ignore[union-attr]
        started = time.monotonic()
        status, payload, _ = await post(stack)
        assert status == 503
        assert time.monotonic() - started < 2.0
        assert payload["error"]["type"] == "service_unavailable"
        assert "endpoint picker" in payload["error"]["message"]
    finally:
        await stack.stop()


async def test_fail_open_reaches_a_pod_when_epp_is_down(tmp_path: Path) -> None:
    stack = await start_stack(make_config_dir(tmp_path, failure_mode("FailOpen")))
    try:
        await stack.epp.stop(0)  # type: ignore[union-attr]
        results = [await post(stack) for _ in range(4)]
        assert [r[0] for r in results] == [200] * 4
        assert all(r[1]["choices"][0]["text"] for r in results)
    finally:
        await stack.stop()


async def test_dead_primary_pod_falls_back_to_next_endpoint(tmp_path: Path) -> None:
    stack = await start_stack(make_config_dir(tmp_path))
    try:
        epp = stack.epp
        assert epp is not None
        await epp.scraper.stop()  # freeze metrics so the dead pod still looks like the best choice
        dead = stack.pods[0]
        dead_addr = dead.addresses[0]
        for e in epp.store.endpoints():
            e.metrics.waiting_queue = 0 if e.address == dead_addr else 3
        proc = stack.simulators.procs[0]
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        results = await asyncio.gather(*(post(stack) for _ in range(10)))
        assert [r[0] for r in results] == [200] * 10, [r[1] for r in results if r[0] != 200][:2]
        served = {r[2]["x-gateway-destination-endpoint-served"] for r in results}
        assert dead_addr not in served
    finally:
        await stack.stop()


async def test_mtls_stack_serves(tmp_path: Path) -> None:
    stack = await start_stack(make_config_dir(tmp_path), tls=True)
    try:
        status, payload, _ = await post(stack)
        assert status == 200, payload
    finally:
        await stack.stop()
