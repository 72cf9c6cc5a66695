"""The response reported by Envoy's gRPC access log (the default, response phases "access-log"),
through a real Envoy: the routing stream ends once the request is routed, nothing else per
request reaches the EPP, and one access-log entry per finished HTTP stream completes the
request (usage from the Lua filter, Envoy's timings), whether it finished, failed or was
abandoned, so the in-flight ledger returns to 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from inference_gateway.envoy.bootstrap import SERVED_HEADER
from inference_gateway.requestcontrol.director import RequestContext
from inference_gateway.requestcontrol.errors import GatewayError
from tests.extproc.test_observe import ITL_S, MODEL, TOKENS, Gateway, body, running_gateway, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(tmp_path, 73, "access-log") as running:
        yield running


class Completed(list[RequestContext]):
    """A RequestObserver that keeps each completed context."""

    def on_routed(self, ctx: RequestContext) -> None:
        pass

    def on_error(self, ctx: RequestContext, error: GatewayError) -> None:
        pass

    def on_complete(self, ctx: RequestContext) -> None:
        self.append(ctx)


def entries(gateway: Gateway) -> int:
    als = gateway.epp.extproc.access_log
    assert als is not None
    return als.entries


async def test_streamed_request_completes_from_its_access_log_entry(gateway: Gateway) -> None:
    director = gateway.epp.director
    completed = []
    director.observers.append(
        type(
            "Seen",
            (),
            {
                "on_routed": lambda self, ctx: None,
                "on_error": lambda self, ctx, err: None,
                "on_complete": lambda self, ctx: completed.append(ctx),
            },
        )()
    )
    async with aiohttp.ClientSession() as session, session.post(gateway.url, json=body()) as resp:
        assert resp.status == 200
        served = resp.headers[SERVED_HEADER]
        assert served in gateway.addresses  # added by Envoy itself
        await resp.content.readuntil(b"\n\n")
        # routed and handed over; the request is still generating
        assert gateway.in_flight() == 1 and gateway.epp.extproc.observer.pending == 1
        rest = await resp.read()
    assert b"[DONE]" in rest
    await wait_for(lambda: gateway.in_flight() == 0)
    assert gateway.epp.extproc.observer.pending == 0
    (ctx,) = completed
    assert ctx.response_status == 200 and ctx.served is not None and ctx.served.address == served
    assert (ctx.prompt_tokens, ctx.completion_tokens) == (1, TOKENS)
    assert ctx.response_chunks > 1  # streamed: the latency learners get TTFT and TPOT
    ttft, e2e = ctx.first_byte_at - ctx.started, ctx.ended_at - ctx.started
    # the instant backend sends the first token at once, then one every ITL_S
    assert 0 <= ttft < ITL_S and (TOKENS - 1) * ITL_S <= e2e < (TOKENS + 3) * ITL_S
    totals = list(gateway.epp.director.usage.totals.values())
    assert [t.completion_tokens for t in totals] == [TOKENS]


async def test_non_streamed_usage_comes_from_the_lua_filter(gateway: Gateway) -> None:
    unstreamed = {**body(), "stream": False}
    async with aiohttp.ClientSession() as session, session.post(gateway.url, json=unstreamed) as resp:
        assert resp.status == 200
        await resp.read()
    await wait_for(lambda: gateway.in_flight() == 0 and bool(gateway.epp.director.usage.totals))
    (totals,) = gateway.epp.director.usage.totals.values()
    assert (totals.prompt_tokens, totals.completion_tokens) == (1, TOKENS)


async def test_a_gateway_killed_mid_stream_releases_the_slots_it_routed(gateway: Gateway) -> None:
    """An Envoy that dies sends no access-log entry for its open requests; its access-log
    stream's end (and none reopening within the grace) ends what was routed on its connection."""
    async with aiohttp.ClientSession() as session:
        async with session.post(gateway.url, json=body()) as done:
            await done.read()  # one whole request: Envoy's access-log stream is open
        await wait_for(lambda: entries(gateway) >= 1)
        resp = await session.post(gateway.url, json=body())
        await resp.content.readuntil(b"\n\n")
        assert gateway.in_flight() == 1
        assert gateway.envoy is not None and gateway.envoy.proc is not None
        gateway.envoy.proc.kill()
        await gateway.envoy.proc.wait()
        resp.close()
    await wait_for(lambda: gateway.in_flight() == 0)
    assert gateway.epp.extproc.observer.pending == 0


async def test_upstream_gone_mid_stream_and_after_releases_the_slots(gateway: Gateway) -> None:
    assert gateway.backend is not None
    async with aiohttp.ClientSession() as session:
        resp = await session.post(gateway.url, json=body())
        await resp.content.readuntil(b"\n\n")
        gateway.backend.kill()  # the model server dies mid-response: Envoy resets the stream
        with pytest.raises(aiohttp.ClientError):
            await resp.read()
        await wait_for(lambda: gateway.in_flight() == 0)
        # nothing listens any more: connect failures, retries, then Envoy's own 503
        async with session.post(gateway.url, json=body()) as failed:
            assert failed.status == 503
            await failed.read()
    await wait_for(lambda: entries(gateway) == 2)
    await wait_for(lambda: gateway.in_flight() == 0 and gateway.epp.extproc.observer.pending == 0)


async def test_model_name_rewrite_keeps_its_response_stream(gateway: Gateway) -> None:
    hs = {"x-gateway-model-name-rewrite": "renamed-model"}
    async with aiohttp.ClientSession() as session, session.post(gateway.url, json=body(), headers=hs) as r:
        text = await r.read()
    assert b'"model":"renamed-model"' not in text and f'"model":"{MODEL}"'.encode() in text
    await wait_for(lambda: gateway.in_flight() == 0 and gateway.epp.extproc.observer.pending == 0)


async def test_rejected_request_is_logged_but_matches_nothing(gateway: Gateway) -> None:
    als = gateway.epp.extproc.access_log
    assert als is not None
    async with aiohttp.ClientSession() as session:
        hs = {"content-type": "application/json"}
        async with session.post(gateway.url, data=b"{not json", headers=hs) as resp:
            assert resp.status == 400
            await resp.read()
    await wait_for(lambda: als.unmatched == 1)
    assert gateway.in_flight() == 0
