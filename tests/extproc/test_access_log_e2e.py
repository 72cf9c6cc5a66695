"""The response reported by Envoy's gRPC access log (the default, response phases "access-log"),
through a real Envoy: the routing stream ends once the request is routed, nothing else per
request reaches the EPP, and one access-log entry per finished HTTP stream completes the
request (usage from the Lua filter, Envoy's timings), whether it finished, failed or was
abandoned, so the in-flight ledger returns to 0."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from inference_gateway.bench.pool import pod_ips, pool_resources
from inference_gateway.envoy.bootstrap import SERVED_HEADER, EnvoyConfig
from inference_gateway.envoy.process import EnvoyProcess
from inference_gateway.epp import EndpointPicker, EPPOptions
from inference_gateway.local.stack import free_port
from inference_gateway.requestcontrol.director import RequestContext
from inference_gateway.requestcontrol.errors import GatewayError
from tests.extproc.test_observe import MODEL, TOKENS, Gateway, body, wait_for

pytestmark = pytest.mark.e2e

ITL_S = 0.15


@dataclass
class Backed(Gateway):
    backend: asyncio.subprocess.Process | None = None
    envoy: EnvoyProcess | None = None


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Backed]:
    port, ips = free_port(), pod_ips(2, 73)
    args = [sys.executable, "-m", "inference_gateway.bench.instant", "--tokens", str(TOKENS)]
    args += ["--itl-ms", str(int(ITL_S * 1000))]
    for ip in ips:
        args += ["--listen", f"{ip}:{port}"]
    backend = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    assert backend.stdout is not None
    assert (await asyncio.wait_for(backend.stdout.readline(), 20)).strip() == b"ready"
    epp = EndpointPicker(EPPOptions(grpc_port=0, metrics_port=None, health_port=None))
    epp.store.replace_all(pool_resources(ips, port))
    epp.store.synced = True
    await epp.start()
    listen = free_port()
    addresses = [f"{ip}:{port}" for ip in ips]
    envoy = EnvoyProcess(EnvoyConfig(listen_port=listen, epp_port=epp.port), tmp_path / "envoy")
    try:
        await envoy.start(addresses)
        yield Backed(f"http://127.0.0.1:{listen}/v1/completions", epp, addresses, backend, envoy)
    finally:
        await envoy.stop()
        await epp.stop()
        if backend.returncode is None:
            backend.terminate()
        await backend.wait()


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


async def test_client_gone_mid_stream_releases_its_in_flight_slot(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as session:
        resp = await session.post(gateway.url, json=body())
        await resp.content.readuntil(b"\n\n")
        assert gateway.in_flight() == 1
        resp.close()  # drop the connection mid-stream
    await wait_for(lambda: gateway.in_flight() == 0)
    assert gateway.epp.extproc.observer.pending == 0


async def test_a_gateway_killed_mid_stream_releases_the_slots_it_routed(gateway: Backed) -> None:
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


async def test_upstream_gone_mid_stream_and_after_releases_the_slots(gateway: Backed) -> None:
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
