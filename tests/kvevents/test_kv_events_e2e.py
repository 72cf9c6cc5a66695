"""Simulator -> ZMQ (vLLM's wire format) -> EPP exact index -> routing, on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.plugins.precise_prefix_cache_scorer import PrecisePrefixCacheScorer
from inference_gateway.scheduling.types import CycleState, SchedulingRequest
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.server import SimulatedServer
from inference_gateway.simulator.tokenizer import output_text
from tests.scheduling.sched_helpers import endpoint

MODEL = "meta-llama/Llama-2-7b-hf"
SEED = "7"


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ports(n: int) -> tuple[list[int], int]:
    """n free serving ports and one offset that makes port + offset free for each."""
    ports = []
    for _ in range(n):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
    for offset in range(-20000, 20000, 97):
        if all(1024 < p + offset < 65535 and _free(p + offset) for p in ports) and offset:
            return ports, offset
    raise RuntimeError("no free event ports")


async def until(check: Callable[[], bool], within_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@dataclass
class Fleet:
    servers: list[SimulatedServer]
    endpoints: list[Endpoint]
    offset: int
    http: aiohttp.ClientSession

    async def complete(self, i: int, body: dict[str, object], path: str = "/v1/completions") -> None:
        url = f"http://127.0.0.1:{self.servers[i].port}{path}"
        async with self.http.post(url, json={"model": MODEL, "max_tokens": 1, **body}) as resp:
            assert resp.status == 200, await resp.text()


@pytest.fixture
async def fleet(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fleet]:
    monkeypatch.setenv("PYTHONHASHSEED", SEED)  # vLLM seeds its block hashes with it
    ports, offset = _ports(2)
    servers = []
    for port in ports:
        events = {"enable_kv_cache_events": True, "publisher": "zmq", "endpoint": f"tcp://*:{port + offset}"}
        server = SimulatedServer(ServerConfig(time_scale=0.02, kv_events_config=json.dumps(events)))
        await server.start("127.0.0.1", port)
        servers.append(server)
    eps = [endpoint(f"sim-{i}", ip="127.0.0.1", port=p) for i, p in enumerate(ports)]
    async with aiohttp.ClientSession() as http:
        yield Fleet(servers, eps, offset, http)
    for server in servers:
        await server.stop()


def _config(offset: int) -> str:
    return f"""
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: precise-prefix-cache-scorer
  parameters:
    tokenizer: sim
    tokenProcessorConfig: {{blockSize: 16, hashSeed: "{SEED}"}}
    kvEventsConfig: {{socketPortOffset: {offset}}}
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - {{pluginRef: precise-prefix-cache-scorer}}
  - {{pluginRef: max-score-picker}}
"""


async def _subscribed(fleet: Fleet, scorer: PrecisePrefixCacheScorer, i: int) -> None:
    """ZMQ drops what a PUB sends before a SUB has joined: poke the pod until events arrive."""
    address = fleet.endpoints[i].address
    for n in range(200):
        if scorer.index.has_pod(address):
            return
        await fleet.complete(i, {"prompt": output_text(n, 0, 40)})
        await asyncio.sleep(0.05)
    raise AssertionError(f"no KV events from {address}")


async def test_requests_follow_blocks_the_pods_report(fleet: Fleet) -> None:
    config = load_config(_config(fleet.offset))
    scorer = config.plugins["precise-prefix-cache-scorer"]
    assert isinstance(scorer, PrecisePrefixCacheScorer)
    runtime = PoolRuntime(config)
    scheduler = runtime.scheduler
    runtime.endpoints_changed({e.address for e in fleet.endpoints})
    await scorer.start()
    try:
        await _subscribed(fleet, scorer, 1)
        # The prompt reaches pod 1 directly, bypassing the EPP: only its events can tell.
        prompt = output_text(999, 0, 400)  # 25 blocks of 16 tokens
        await fleet.complete(1, {"prompt": prompt})
        request = SchedulingRequest("r1", MODEL, MODEL, prompt=prompt)
        hashes = scorer.block_hashes(request)
        assert hashes and len(hashes) == 25
        await until(lambda: scorer.index.match(hashes, 0.0).get(fleet.endpoints[1].address) == 25)

        result, _ = scheduler.schedule(request, fleet.endpoints)
        assert result.endpoints[0].address == fleet.endpoints[1].address
        scores = scorer.score(CycleState(), request, fleet.endpoints)
        assert scores == [0.0, 1.0]  # pod 0 sent no events: the approximate index knows nothing

        # Chat: the EPP renders the simulator's chat template before hashing.
        messages = [{"role": "system", "content": output_text(5, 0, 300)}, {"role": "user", "content": "hi"}]
        await fleet.complete(1, {"messages": messages}, "/v1/chat/completions")
        chat = SchedulingRequest("r2", MODEL, MODEL, prompt="", messages=messages)
        chat_hashes = scorer.block_hashes(chat)
        assert chat_hashes
        await until(
            lambda: scorer.index.match(chat_hashes, 0.0).get(fleet.endpoints[1].address) == len(chat_hashes)
        )
        assert scheduler.schedule(chat, fleet.endpoints)[0].endpoints[0].address == fleet.endpoints[1].address
    finally:
        await scorer.stop()


async def test_the_epp_starts_and_stops_the_subscriptions() -> None:
    from inference_gateway.epp import EndpointPicker, EPPOptions

    epp = EndpointPicker(EPPOptions(grpc_port=0, metrics_port=None, health_port=None, config_text=_config(1)))
    scorer = epp.config.plugins["precise-prefix-cache-scorer"]
    assert isinstance(scorer, PrecisePrefixCacheScorer)
    await epp.start()
    try:
        assert scorer.subscriber.running
    finally:
        await epp.stop(0.1)
    assert not scorer.subscriber.running


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tokenizer": "/no/such/tokenizer.json"}, "does not exist"),
        ({"kvEventsConfig": {"zmqEndpoint": 5557}}, "zmqEndpoint"),
        ({"tokenProcessorConfig": {"hashAlgo": "md5"}}, "hashAlgo"),
        ({"kvEventsConfig": {"socketPortOffset": "x"}}, "socketPortOffset"),
        ({"colour": 1}, "unknown parameter"),
    ],
)
def test_bad_parameters_name_the_field(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PrecisePrefixCacheScorer(parameters=params)


def test_without_a_tokenizer_it_scores_like_the_approximate_index() -> None:
    scorer = PrecisePrefixCacheScorer()
    eps = [endpoint("a"), endpoint("b")]
    request = SchedulingRequest("r", MODEL, MODEL, prompt="x" * 640)
    state = CycleState()
    assert scorer.score(state, request, eps) == [0.0, 0.0]
    scorer.on_picked(state, request, eps[1])
    assert scorer.score(CycleState(), request, eps) == [0.0, 1.0]
