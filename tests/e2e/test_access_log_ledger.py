"""Through `up` (simulated vLLM pods, Envoy, the EPP), responses reported by Envoy's gRPC access
log (the default): the in-flight ledger returns to 0 after requests that finish, that the client
abandons mid-stream, and whose model server dies mid-stream; usage reaches the EPP for
streamed (include_usage) and non-streamed responses."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson
import pytest

from inference_gateway.envoy.bootstrap import SERVED_HEADER
from inference_gateway.local.stack import LocalStack
from tests.conftest import make_config_dir, start_stack

pytestmark = pytest.mark.e2e

MODEL = "meta-llama/Llama-2-7b-hf"


def in_flight(stack: LocalStack) -> int:
    assert stack.epp is not None
    return sum(e.in_flight for e in stack.epp.store.endpoints())


async def settled(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_ledger_returns_to_zero_after_finished_abandoned_and_failed_requests(tmp_path: Path) -> None:
    stack = await start_stack(make_config_dir(tmp_path))
    try:
        epp = stack.epp
        assert epp is not None and epp.extproc.access_log is not None
        url = f"{stack.base_url}/completions"
        streamed = {"model": MODEL, "prompt": "hello", "max_tokens": 8, "stream": True}
        streamed["stream_options"] = {"include_usage": True}
        async with aiohttp.ClientSession() as session:
            # finished: streamed with usage, and not streamed
            async with session.post(url, json=streamed) as resp:
                events = [line for line in (await resp.read()).split(b"\n") if line.startswith(b"data: {")]
            stream_usage = orjson.loads(events[-1][6:])["usage"]
            async with session.post(url, json={**streamed, "stream": False}) as resp:
                plain_usage = (await resp.json())["usage"]
            await settled(lambda: in_flight(stack) == 0)
            (totals,) = epp.director.usage.totals.values()
            assert totals.requests == 2
            assert (
                totals.completion_tokens
                == stream_usage["completion_tokens"] + plain_usage["completion_tokens"]
            )
            assert totals.prompt_tokens == stream_usage["prompt_tokens"] + plain_usage["prompt_tokens"]

            # abandoned: the client goes away mid-stream
            long = {**streamed, "max_tokens": 2000}
            resp = await session.post(url, json=long)
            await resp.content.readuntil(b"\n\n")
            assert in_flight(stack) == 1
            resp.close()
            await settled(lambda: in_flight(stack) == 0)

            # failed: the model server dies mid-stream (Envoy resets the response)
            resp = await session.post(url, json=long)
            await resp.content.readuntil(b"\n\n")
            served = resp.headers[SERVED_HEADER]
            (index,) = [i for i, pod in enumerate(stack.pods) if served in pod.addresses]
            proc = stack.simulators.procs[index]
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
            with pytest.raises(aiohttp.ClientError):
                await resp.read()
            resp.close()
            await settled(lambda: in_flight(stack) == 0)
        assert epp.extproc.observer.pending == 0
        assert epp.extproc.access_log.entries >= 4
    finally:
        await stack.stop()
