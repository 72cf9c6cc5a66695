"""Model-server faults through the real Envoy + EPP: what the client sees, and that every request
ends in a defined outcome (see docs/reliability.md for the semantics these tests pin down)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from inference_gateway.local.stack import LocalStack
from tests.faults.client import (
    completion_body,
    eventually,
    prefer,
    send,
    send_many,
    session,
    set_faults,
    settle,
)
from tests.faults.conftest import small_stack

pytestmark = pytest.mark.e2e


def mixed(n: int, max_tokens: int = 8) -> list[dict]:
    return [completion_body(stream=i % 2 == 0, max_tokens=max_tokens) for i in range(n)]


def pod_addresses(stack: LocalStack) -> list[str]:
    return [p.addresses[0] for p in stack.pods]


async def test_pod_500_reaches_the_client_and_is_not_retried(pair: LocalStack) -> None:
    bad = pod_addresses(pair)[0]
    await prefer(pair, bad)
    await set_faults(bad, "error500")
    tally = await send_many(pair, mixed(12))
    tally.assert_accounted(12, {"ok", "error"})
    errors = tally.of("error")
    assert errors, "the preferred pod served nothing"
    for o in errors:
        # The pod's own OpenAI-shaped body, from the pod that failed: no other pod was tried.
        assert (o.status, o.served) == (500, bad)
        assert o.error is not None and "injected fault" in o.error["message"]
    assert all(o.served != bad for o in tally.of("ok"))
    await settle(pair)


async def test_pod_503_is_retried_on_the_next_endpoint(pair: LocalStack) -> None:
    addresses = pod_addresses(pair)
    await prefer(pair, addresses[0])
    await set_faults(addresses[0], "error503")
    tally = await send_many(pair, mixed(12))
    tally.assert_accounted(12, {"ok"})
    assert all(o.served != addresses[0] for o in tally.outcomes)

    for address in addresses:  # every endpoint refuses: the last 503 reaches the client
        await set_faults(address, "error503")
    tally = await send_many(pair, mixed(4))
    tally.assert_accounted(4, {"error"})
    assert {o.status for o in tally.outcomes} == {503}
    await settle(pair)


async def test_hanging_pod_gets_a_504_json_error_at_the_route_timeout(tmp_path: Path) -> None:
    stack = await small_stack(tmp_path, envoy_overrides={"route_timeout_s": 1.5})
    try:
        bad = pod_addresses(stack)[0]
        await prefer(stack, bad)
        await set_faults(bad, "hang")
        tally = await send_many(stack, mixed(6))
        tally.assert_accounted(6, {"ok", "error"})
        assert tally.of("error"), "the preferred pod served nothing"
        for o in tally.of("error"):
            assert o.status == 504 and o.error is not None
            assert o.error["type"] == "timeout"
            assert o.seconds >= 1.4  # the route timeout, not an early failure
        await set_faults(bad)  # the pod recovers: its hung handlers were cancelled, not stuck
        tally = await send_many(stack, mixed(4))
        tally.assert_accounted(4, {"ok"})
        await settle(stack)
    finally:
        await stack.stop()


async def test_stalled_stream_ends_at_the_idle_timeout(tmp_path: Path) -> None:
    stack = await small_stack(tmp_path, envoy_overrides={"stream_idle_timeout_s": 1.0})
    try:
        for address in pod_addresses(stack):
            await set_faults(address, "stall-after-tokens:2")
        tally = await send_many(stack, mixed(6, max_tokens=50))
        # Streams already sent their headers and two tokens: they end truncated. Non-streaming
        # responses had not started: Envoy answers 504 in JSON.
        tally.assert_accounted(6, {"truncated", "error"})
        assert len(tally.of("truncated")) == 3
        assert {(o.status, o.error["type"]) for o in tally.of("error") if o.error} == {(504, "timeout")}
        assert max(o.seconds for o in tally.outcomes) < 10
        await settle(stack)
    finally:
        await stack.stop()


async def test_pod_crash_mid_generation(pair: LocalStack) -> None:
    """The preferred pod exits after a few tokens, taking every request it holds down with it."""
    bad = pod_addresses(pair)[0]
    await prefer(pair, bad)  # frozen metrics: the EPP keeps picking the dead pod afterwards
    await set_faults(bad, "die-after-tokens:3")
    tally = await send_many(pair, mixed(16, max_tokens=40), concurrency=8)
    # Streams already relayed to the client are cut; a response not yet relayed is a JSON
    # error (503 reset before the pod answered, 502 when its headers were still in Envoy);
    # once the pod is gone, connect failures retry on the fallback endpoints and succeed.
    tally.assert_accounted(16, {"ok", "error", "truncated"})
    assert tally.of("truncated") or tally.of("error")
    for o in tally.of("error"):
        assert o.status in (502, 503) and o.error is not None
        assert "reset" in o.error["code"], o.error
    assert all(o.served != bad for o in tally.of("ok"))
    assert pair.simulators.procs[0].returncode is not None
    later = await send_many(pair, mixed(6))
    later.assert_accounted(6, {"ok"})
    await settle(pair)


async def test_sigkill_mid_stream_ends_the_client_stream(tmp_path: Path) -> None:
    # Slow model time, so the stream is still running when its pod is killed.
    stack = await small_stack(tmp_path, time_scale=0.5)
    try:
        async with (
            session() as s,
            s.post(f"{stack.base_url}/completions", json=completion_body(stream=True, max_tokens=2000)) as r,
        ):
            assert r.status == 200
            served = r.headers["x-gateway-destination-endpoint-served"]
            request_id = r.headers["x-request-id"]
            await r.content.readuntil(b"\n\n")
            proc = stack.simulators.procs[pod_addresses(stack).index(served)]
            os.kill(proc.pid, signal.SIGKILL)
            started = time.monotonic()
            with pytest.raises(Exception) as failure:  # any transport error ends it
                await asyncio.wait_for(r.read(), 10)
            assert not isinstance(failure.value, TimeoutError)
            assert time.monotonic() - started < 5
        # The cut stream is in Envoy's log, with its request id and the reset flag.
        assert stack.envoy is not None
        log_path = stack.envoy.log_path

        def logged() -> bool:
            return any(
                request_id in line and "abnormal request" in line and "flags=U" in line
                for line in log_path.read_text(errors="replace").splitlines()
            )

        await eventually(logged, 10, "the cut stream in Envoy's log")
        async with session() as s:
            outcome = await send(s, f"{stack.base_url}/completions", completion_body())
        assert outcome.kind == "ok"
        await settle(stack)
    finally:
        await stack.stop()
