"""token-producer (vLLM's render endpoints) + precise-prefix-cache-scorer in llm-d's global
socket mode (the pods' publishers connect to the EPP), as llm-d's kv-cache configs deploy it:
a render server tokenizing with the simulator's tokenizer, a simulated vLLM publishing KV
events, the EPP matching the rendered token ids against them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from inference_gateway.kvevents.global_subscriber import GlobalKVEventSubscriber, topic_pod
from inference_gateway.kvevents.index import KVBlockIndex
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import ConfigError, load_config
from inference_gateway.scheduling.plugins.context_length_aware import estimated_tokens
from inference_gateway.scheduling.plugins.precise_prefix_cache_scorer import PrecisePrefixCacheScorer
from inference_gateway.scheduling.plugins.token_producer import TokenProducer
from inference_gateway.scheduling.types import SchedulingRequest, TokenizedPrompt
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.server import SimulatedServer
from inference_gateway.simulator.tokenizer import SimTokenizer, output_text
from tests.kvevents.test_kv_events_e2e import until
from tests.scheduling.sched_helpers import endpoint

MODEL = "meta-llama/Llama-2-7b-hf"
SEED = "7"


class RenderServer:
    """vLLM's /v1/completions/render and /v1/chat/completions/render, on loopback."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.delay_s = 0.0
        self.status = 200
        self._tok = SimTokenizer()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _completions(self, req: web.Request) -> web.Response:
        body = await req.json()
        self.bodies.append(body)
        await asyncio.sleep(self.delay_s)
        if self.status != 200:
            return web.Response(status=self.status, text="model not loaded")
        return web.json_response([{"token_ids": self._tok.encode(body["prompt"])}])

    async def _chat(self, req: web.Request) -> web.Response:
        body = await req.json()
        self.bodies.append(body)
        text = " ".join(str(m["content"]) for m in body["messages"])
        media = any(isinstance(m["content"], list) for m in body["messages"])
        features = {"mm_hashes": {"image": ["abc"]}, "mm_placeholders": {}} if media else None
        return web.json_response({"token_ids": self._tok.encode(text), "features": features})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/completions/render", self._completions)
        app.router.add_post("/v1/chat/completions/render", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def render() -> AsyncIterator[RenderServer]:
    server = RenderServer()
    await server.start()
    yield server
    await server.stop()


def producer(url: str, **vllm: str) -> TokenProducer:
    return TokenProducer(parameters={"modelName": MODEL, "vllm": {"http": url, **vllm}})


async def test_producer_renders_completions_and_chats(render: RenderServer) -> None:
    tokens = producer(render.url)
    try:
        req = SchedulingRequest("r1", MODEL, MODEL, prompt="hello world")
        await tokens.produce(req, {"model": "x", "prompt": "hello world"})
        assert req.tokens == TokenizedPrompt(SimTokenizer().encode("hello world"))
        assert render.bodies[-1] == {"model": MODEL, "prompt": "hello world"}  # the configured model
        assert estimated_tokens(req) == len(req.tokens.token_ids)  # context-length-aware's count

        chat = {"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": False, "n": 2}
        req2 = SchedulingRequest("r2", MODEL, MODEL, messages=chat["messages"])
        await tokens.produce(req2, chat)
        assert render.bodies[-1] == {
            "model": MODEL,
            "messages": chat["messages"],
            "add_generation_prompt": False,
        }
        assert req2.tokens is not None and not req2.tokens.has_media

        image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]
        req3 = SchedulingRequest("r3", MODEL, MODEL, messages=image)
        await tokens.produce(req3, {"messages": image})
        assert req3.tokens is not None and req3.tokens.has_media
        assert PrecisePrefixCacheScorer().block_hashes(req3) is None  # media: approximate index

        calls = len(render.bodies)
        await tokens.produce(req, {"prompt": "hello world"})  # already tokenized
        assert len(render.bodies) == calls
    finally:
        await tokens.stop()


async def test_render_failures_leave_the_request_untokenized(render: RenderServer) -> None:
    tokens = producer(render.url, timeout="50ms")
    try:
        render.status = 503
        req = SchedulingRequest("r", MODEL, MODEL, prompt="p")
        await tokens.produce(req, {"prompt": "p"})
        render.status, render.delay_s = 200, 1.0
        await tokens.produce(req, {"prompt": "p"})  # over vllm.timeout
        await tokens.produce(req, {"prompt": ["a", "list"]})  # unsupported body
        assert req.tokens is None and tokens.failures == 3
    finally:
        await tokens.stop()


def test_bad_token_producer_parameters_are_one_line_errors() -> None:
    base = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: token-producer\n"
    for params, message in [
        ("", "'modelName' must be specified"),
        ("  parameters: {modelName: m, vllm: {htp: x}}\n", "unknown parameter"),
        ("  parameters: {modelName: m, udsTokenizerConfig: {socketFile: /s}}\n", "use 'vllm.http'"),
        ("  parameters: {modelName: m, vllm: {timeout: soon}}\n", "'timeout' must be a duration"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(base + params)


def test_global_socket_topics_name_the_pod() -> None:
    assert topic_pod(b"kv@10.0.0.7@Qwen/Qwen3-8B") == "10.0.0.7"
    assert topic_pod(b"kv@10.0.0.7:8001@m") == "10.0.0.7:8001"
    assert topic_pod(b"") is None and topic_pod(b"kv@@m") is None
    sub = GlobalKVEventSubscriber(KVBlockIndex(), "tcp://127.0.0.1:0")
    sub.set_pods({"10.0.0.7:8000", "10.0.0.7:8001", "10.0.0.8:8000"})
    assert sorted(sub.targets("10.0.0.7")) == ["10.0.0.7:8000", "10.0.0.7:8001"]
    assert sub.targets("10.0.0.8:8000") == ["10.0.0.8:8000"] and sub.targets("10.9.9.9") == []


CONFIG = """
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: token-producer
  parameters: {{modelName: {model}, vllm: {{http: "{url}"}}}}
- type: endpoint-notification-source
- type: precise-prefix-cache-scorer
  parameters:
    tokenProcessorConfig: {{blockSize: 16, hashSeed: "{seed}"}}
    kvEventsConfig: {{zmqEndpoint: "tcp://127.0.0.1:0", topicFilter: "kv@"}}
- type: max-score-picker
dataLayer:
  sources:
  - pluginRef: endpoint-notification-source
    extractors: [{{pluginRef: precise-prefix-cache-scorer}}]
schedulingProfiles:
- name: default
  plugins: [{{pluginRef: precise-prefix-cache-scorer}}, {{pluginRef: max-score-picker}}]
"""


async def test_rendered_tokens_match_events_from_pods_that_connect(
    render: RenderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONHASHSEED", SEED)  # vLLM seeds its block hashes with it
    runtime = PoolRuntime(
        load_config(CONFIG.format(model=MODEL, url=render.url, seed=SEED)), flow_control=False
    )
    scorer = runtime.config.plugins["precise-prefix-cache-scorer"]
    tokens = runtime.config.plugins["token-producer"]
    assert isinstance(scorer, PrecisePrefixCacheScorer) and isinstance(tokens, TokenProducer)
    assert isinstance(scorer.subscriber, GlobalKVEventSubscriber)
    await scorer.start()
    pod = SimulatedServer(ServerConfig(time_scale=0.02))
    try:
        await pod.start("127.0.0.1", 0)
        await pod.stop()
        port = pod.port  # the simulator, restarted on a known port, publishing to the EPP
        topic = f"kv@127.0.0.1:{port}@{MODEL}"
        events = {
            "enable_kv_cache_events": True,
            "publisher": "zmq",
            "endpoint": scorer.subscriber.bound_endpoint,
            "topic": topic,
        }
        pod = SimulatedServer(ServerConfig(time_scale=0.02, kv_events_config=json.dumps(events)))
        await pod.start("127.0.0.1", port)
        eps = [endpoint("other", ip="127.0.0.2", port=port), endpoint("sim", ip="127.0.0.1", port=port)]
        runtime.endpoints_changed({e.address for e in eps})
        prompt = output_text(999, 0, 400)  # 25 blocks of 16 tokens
        async with aiohttp.ClientSession() as http:

            async def complete(text: str) -> None:
                url = f"http://127.0.0.1:{port}/v1/completions"
                async with http.post(url, json={"model": MODEL, "prompt": text, "max_tokens": 1}) as resp:
                    assert resp.status == 200

            for n in range(200):  # a connecting PUB drops what it sends before the link is up
                if scorer.index.has_pod(eps[1].address):
                    break
                await complete(output_text(n, 0, 40))
                await asyncio.sleep(0.05)
            await complete(prompt)  # straight to the pod: only its events can tell the EPP
        assert scorer.index.has_pod(eps[1].address), "no KV events reached the EPP's socket"
        body = {"model": MODEL, "prompt": prompt}
        probe = SchedulingRequest("r1", MODEL, MODEL, prompt=prompt)
        await tokens.produce(probe, body)
        hashes = scorer.block_hashes(probe)
        assert hashes and len(hashes) == 25
        await until(lambda: scorer.index.match(hashes, 0.0).get(eps[1].address) == 25)
        request = SchedulingRequest("r2", MODEL, MODEL, prompt=prompt)
        decision = await runtime.decide(request, lambda: eps, body=body)
        assert request.tokens == probe.tokens  # the runtime ran the producer before scheduling
        assert decision.endpoints[0].address == eps[1].address
        decision.complete()
    finally:
        await pod.stop()
        await scorer.stop()
        await tokens.stop()
