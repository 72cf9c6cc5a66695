"""The response observed off the critical path (EnvoyConfig.response_phases = "observe"), through
a real Envoy: the routing stream ends once the request is routed, the observer stream carries
status, usage and completion, and the in-flight ledger follows the HTTP stream, not the
routing stream."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from inference_gateway.bench.pool import pod_ips, pool_resources
from inference_gateway.envoy.bootstrap import SERVED_HEADER, EnvoyConfig, bootstrap
from inference_gateway.envoy.process import EnvoyProcess
from inference_gateway.epp import EndpointPicker, EPPOptions
from inference_gateway.extproc.observe import ResponseObserver
from inference_gateway.local.stack import free_port, response_phases
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from tests.helpers import make_store

pytestmark = pytest.mark.e2e

MODEL = "meta-llama/Llama-2-7b-hf"
TOKENS = 4
ITL_S = 0.15  # between the instant pods' tokens


@dataclass
class Gateway:
    url: str
    epp: EndpointPicker
    addresses: list[str]
    backend: asyncio.subprocess.Process | None = None
    envoy: EnvoyProcess | None = None

    def in_flight(self) -> int:
        return sum(e.in_flight for e in self.epp.store.endpoints())


async def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def running_gateway(workdir: Path, ip_block: int, response_phases: str) -> AsyncIterator[Gateway]:
    """Two instant pods (TOKENS tokens, 150 ms apart), an in-process EPP and a real Envoy whose
    response phases are `response_phases`."""
    port, ips = free_port(), pod_ips(2, ip_block)
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
    config = EnvoyConfig(listen_port=listen, epp_port=epp.port, response_phases=response_phases)
    envoy = EnvoyProcess(config, workdir / "envoy")
    try:
        await envoy.start(addresses)
        yield Gateway(f"http://127.0.0.1:{listen}/v1/completions", epp, addresses, backend, envoy)
    finally:
        await envoy.stop()
        await epp.stop()
        if backend.returncode is None:
            backend.terminate()
        await backend.wait()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(tmp_path, 71, "observe") as running:
        yield running


@pytest.fixture(params=["observe", "access-log"])
async def off_path_gateway(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Gateway]:
    """Either way of reporting the response off the critical path."""
    async with running_gateway(tmp_path, 71 if request.param == "observe" else 73, request.param) as running:
        yield running


def body() -> dict[str, object]:
    return {"model": MODEL, "prompt": "hello", "stream": True, "max_tokens": TOKENS}


async def test_request_stays_in_flight_until_its_last_chunk_and_usage_is_recorded(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as session, session.post(gateway.url, json=body()) as resp:
        assert resp.status == 200
        assert resp.headers[SERVED_HEADER] in gateway.addresses  # added by Envoy itself
        await resp.content.readuntil(b"\n\n")
        # The routing stream has long ended; the request is still generating.
        assert gateway.in_flight() == 1
        # claimed by its observer stream (which runs beside the response, not in front of it)
        await wait_for(lambda: gateway.epp.extproc.observer.pending == 0)
        rest = await resp.read()
    assert b"[DONE]" in rest
    await wait_for(lambda: gateway.in_flight() == 0)
    totals = list(gateway.epp.director.usage.totals.values())
    assert [t.completion_tokens for t in totals] == [TOKENS]


async def test_client_gone_mid_stream_releases_its_in_flight_slot(off_path_gateway: Gateway) -> None:
    gateway = off_path_gateway
    async with aiohttp.ClientSession() as session:
        resp = await session.post(gateway.url, json=body())
        await resp.content.readuntil(b"\n\n")
        assert gateway.in_flight() == 1
        resp.close()  # drop the connection mid-stream
    await wait_for(lambda: gateway.in_flight() == 0)
    assert gateway.epp.extproc.observer.pending == 0


async def test_explain_header_comes_from_routing_metadata(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(gateway.url, json=body(), headers={"x-gateway-explain": "1"}) as resp:
            assert resp.headers["x-gateway-explain"].startswith("{")
            await resp.read()
        async with session.post(gateway.url, json=body()) as resp:
            assert "x-gateway-explain" not in resp.headers
            await resp.read()


def _filters(cfg: EnvoyConfig) -> list[dict[str, Any]]:
    listener = bootstrap(cfg)["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return [f for f in hcm["http_filters"] if f["name"] != "envoy.filters.http.router"]


def test_observe_keeps_response_phases_off_the_routing_filter() -> None:
    routing, observer, responder = _filters(EnvoyConfig(response_phases="observe"))
    mode = routing["typed_config"]["processing_mode"]
    assert (mode["response_header_mode"], mode["response_body_mode"]) == ("SKIP", "NONE")
    assert observer["typed_config"]["observability_mode"] is True
    # only requests the EPP marks get a response stream on the critical path (rewrites)
    assert responder["name"] == "envoy.filters.http.composite"
    (sent,) = _filters(EnvoyConfig(response_phases="send"))
    mode = sent["typed_config"]["processing_mode"]
    assert (mode["response_header_mode"], mode["response_body_mode"]) == ("SEND", "STREAMED")


def test_plugins_that_need_the_response_keep_the_response_phase() -> None:
    plain = EndpointPicker(EPPOptions(grpc_port=0, metrics_port=None, health_port=None))
    assert response_phases(plain) == "access-log"
    text = (
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"
        "plugins: [{type: session-affinity-scorer}, {type: max-score-picker}]\n"
        "schedulingProfiles: [{name: default, plugins: [{pluginRef: session-affinity-scorer},"
        " {pluginRef: max-score-picker}]}]\n"
    )
    sticky = EndpointPicker(EPPOptions(grpc_port=0, metrics_port=None, health_port=None, config_text=text))
    assert response_phases(sticky) == "send"
    # gateway preemption ends a routed request through its (still open) routing stream
    preempting = text.replace("session-affinity-scorer", "sheddable-preemption")
    epp = EndpointPicker(EPPOptions(grpc_port=0, metrics_port=None, health_port=None, config_text=preempting))
    assert response_phases(epp) == "send"


def test_a_context_whose_observer_never_came_is_completed_after_max_age() -> None:
    director = Director(make_store(), PoolRuntime(load_config(), flow_control=False))
    observer = ResponseObserver(director, max_age_s=10.0, sweep_every_s=0.0)
    old = director.new_context({"x-request-id": "old"})
    old.started -= 60
    observer.expect(old)
    observer.expect(director.new_context({"x-request-id": "new"}))
    assert old.finished and observer.pending == 1


async def test_a_rewritten_model_name_still_gets_its_response_stream(gateway: Gateway) -> None:
    hs = {"x-gateway-model-name-rewrite": "renamed-model"}
    async with aiohttp.ClientSession() as session, session.post(gateway.url, json=body(), headers=hs) as r:
        text = await r.read()
    assert b'"model":"renamed-model"' not in text and f'"model":"{MODEL}"'.encode() in text
    await wait_for(lambda: gateway.in_flight() == 0 and gateway.epp.extproc.observer.pending == 0)
