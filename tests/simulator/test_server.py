"""The real-time vLLM-compatible HTTP front-end, driven by the official openai client."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import openai
import orjson

from .conftest import ServerFactory
from .helpers import words


def _client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


async def test_chat_stream_is_parsed_by_openai_client_and_streams_over_time(
    make_server: ServerFactory,
) -> None:
    server = await make_server(time_scale=0.5)
    client = _client(server.url)
    stream = await client.chat.completions.create(
        model=server.config.served_model_name,
        messages=[{"role": "user", "content": words(300, seed=1)}],
        max_tokens=40,
        stream=True,
        stream_options={"include_usage": True},
    )
    arrivals: list[float] = []
    text, finish, usage, roles = "", None, None, 0
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
            assert chunk.choices == []
            continue
        delta = chunk.choices[0].delta
        roles += delta.role == "assistant"
        if delta.content:
            arrivals.append(time.perf_counter())
            text += delta.content
        finish = chunk.choices[0].finish_reason or finish
    assert roles == 1 and finish == "length"
    assert usage is not None and usage.completion_tokens == 40
    assert server.tokenizer.count(text) == 40
    decode_wall = 39 * 0.0056 * server.config.time_scale
    assert len(arrivals) >= 10  # tokens arrive as steps complete, not in one piece
    assert arrivals[-1] - arrivals[0] > 0.5 * decode_wall


async def test_completion_with_token_ids_and_usage(make_server: ServerFactory) -> None:
    server = await make_server(time_scale=0.05)
    resp = await _client(server.url).completions.create(
        model=server.config.served_model_name, prompt=list(range(100, 164)), max_tokens=7
    )
    assert resp.object == "text_completion"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (64, 7)
    assert resp.choices[0].finish_reason == "length"


async def test_repeated_prompt_reports_cached_tokens(make_server: ServerFactory) -> None:
    server = await make_server(time_scale=0.05)
    client = _client(server.url)
    prompt = words(500, seed=2)
    model = server.config.served_model_name
    first = await client.completions.create(model=model, prompt=prompt, max_tokens=2)
    second = await client.completions.create(model=model, prompt=prompt, max_tokens=2)
    assert first.usage and second.usage
    assert first.usage.prompt_tokens_details.cached_tokens == 0  # type: ignore[union-attr]
    assert second.usage.prompt_tokens_details.cached_tokens == 496  # type: ignore[union-attr]


async def _post(url: str, path: str, body: object) -> tuple[int, object]:
    async with aiohttp.ClientSession() as session:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        async with session.post(url + path, data=data) as resp:
            raw = await resp.read()
            try:
                return resp.status, orjson.loads(raw)
            except orjson.JSONDecodeError:
                return resp.status, raw.decode()


async def test_errors_are_openai_shaped(make_server: ServerFactory) -> None:
    server = await make_server(time_scale=0.05)
    cases = [
        ({"model": "no-such-model", "prompt": "hi", "max_tokens": 2}, 404, "NotFoundError"),
        ({"prompt": "hi", "max_tokens": 5000}, 400, "BadRequestError"),
        ({"max_tokens": 3}, 400, "BadRequestError"),
        (b"{not json", 400, "BadRequestError"),
    ]
    for body, status, kind in cases:
        got, payload = await _post(server.url, "/v1/completions", body)
        assert got == status
        assert isinstance(payload, dict)
        assert payload["error"]["type"] == kind and payload["error"]["code"] == status
        assert payload["error"]["message"]


async def test_models_list_and_runtime_lora_loading(make_server: ServerFactory) -> None:
    server = await make_server(lora_adapters=["sql"], time_scale=0.05)
    client = _client(server.url)
    base = server.config.served_model_name
    ids = [m.id for m in (await client.models.list()).data]
    assert ids == [base, "sql"]
    status, _ = await _post(server.url, "/v1/load_lora_adapter", {"lora_name": "chat", "lora_path": "/x"})
    assert status == 200
    again, err = await _post(server.url, "/v1/load_lora_adapter", {"lora_name": "chat", "lora_path": "/x"})
    assert again == 400 and isinstance(err, dict) and "error" in err
    assert "chat" in [m.id for m in (await client.models.list()).data]
    ok = await client.completions.create(model="chat", prompt="hello", max_tokens=2)
    assert ok.usage and ok.usage.completion_tokens == 2
    assert (await _post(server.url, "/v1/unload_lora_adapter", {"lora_name": "chat"}))[0] == 200
    assert (await _post(server.url, "/v1/unload_lora_adapter", {"lora_name": "chat"}))[0] == 404
    gone, _ = await _post(server.url, "/v1/completions", {"model": "chat", "prompt": "x"})
    assert gone == 404


async def test_client_disconnect_mid_stream_aborts_and_frees_blocks(
    make_server: ServerFactory,
) -> None:
    server = await make_server(time_scale=0.2)
    engine = server.engine
    body = {"prompt": words(400, seed=5), "max_tokens": 2000, "stream": True}
    async with aiohttp.ClientSession() as session:
        resp = await session.post(server.url + "/v1/completions", data=orjson.dumps(body))
        chunks = 0
        async for line in resp.content:
            chunks += line.startswith(b"data: ")
            if chunks >= 3:
                break
        assert len(engine.running) == 1 and engine.pool.num_free < engine.cfg.num_gpu_blocks
        resp.close()
    for _ in range(200):
        if not engine.running:
            break
        await asyncio.sleep(0.01)
    assert not engine.running
    assert engine.pool.num_free == engine.cfg.num_gpu_blocks
    assert engine.stats.finished["abort"] == 1


async def test_non_streaming_client_disconnect_aborts(make_server: ServerFactory) -> None:
    server = await make_server(time_scale=0.2)
    engine = server.engine
    body = orjson.dumps({"prompt": "hello there", "max_tokens": 3000})
    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(session.post(server.url + "/v1/completions", data=body))
        for _ in range(200):
            if engine.running:
                break
            await asyncio.sleep(0.005)
        assert engine.running
        task.cancel()
    for _ in range(200):
        if not engine.running:
            break
        await asyncio.sleep(0.005)
    assert not engine.running and engine.stats.finished["abort"] == 1
    assert engine.pool.num_free == engine.cfg.num_gpu_blocks
