"""The engine endpoints routers call on their workers: vLLM's /tokenize, SGLang's info pages."""

from __future__ import annotations

import aiohttp

from .conftest import ServerFactory
from .helpers import words


async def _post(url: str, body: object) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
        return resp.status, await resp.json()


async def _get(url: str) -> tuple[int, dict | None]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        body = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, body


async def test_tokenize_returns_the_ids_the_engine_prefills(make_server: ServerFactory) -> None:
    server = await make_server(time_scale=0.05)
    model = server.config.served_model_name
    prompt = words(300, seed=4)
    status, tokens = await _post(f"{server.url}/tokenize", {"model": model, "prompt": prompt})
    assert status == 200 and tokens["count"] == len(tokens["tokens"]) > 0
    assert tokens["max_model_len"] == server.engine.cfg.max_model_len
    _, done = await _post(f"{server.url}/v1/completions", {"model": model, "prompt": prompt, "max_tokens": 1})
    assert done["usage"]["prompt_tokens"] == tokens["count"]
    # token ids in, the same ids out
    status, same = await _post(f"{server.url}/tokenize", {"model": model, "prompt": tokens["tokens"]})
    assert same["tokens"] == tokens["tokens"]


async def test_tokenize_applies_the_chat_template(make_server: ServerFactory) -> None:
    server = await make_server(time_scale=0.05)
    model = server.config.served_model_name
    messages = [{"role": "user", "content": words(50, seed=5)}]
    _, chat = await _post(f"{server.url}/tokenize", {"model": model, "messages": messages})
    _, plain = await _post(f"{server.url}/tokenize", {"model": model, "prompt": messages[0]["content"]})
    assert chat["count"] > plain["count"]  # role markers and the generation prompt
    _, done = await _post(
        f"{server.url}/v1/chat/completions", {"model": model, "messages": messages, "max_tokens": 1}
    )
    assert done["usage"]["prompt_tokens"] == chat["count"]


async def test_tokenize_errors_are_openai_shaped(make_server: ServerFactory) -> None:
    server = await make_server(time_scale=0.05)
    status, body = await _post(f"{server.url}/tokenize", {"model": "m"})
    assert status == 400 and "prompt" in body["error"]["message"]


async def test_sglang_pods_serve_sglang_info_pages_and_vllm_pods_do_not(make_server: ServerFactory) -> None:
    sglang = await make_server(time_scale=0.05, metrics_flavor="sglang")
    for path in ("/get_server_info", "/server_info"):
        status, info = await _get(f"{sglang.url}{path}")
        assert status == 200 and info is not None
        assert info["model_path"] == sglang.config.served_model_name and info["dp_size"] == 1
        assert info["page_size"] == sglang.engine.cfg.block_size
    for path in ("/get_model_info", "/model_info"):
        status, info = await _get(f"{sglang.url}{path}")
        assert status == 200 and info is not None and info["is_generation"] is True
    assert (await _get(f"{sglang.url}/health_generate"))[0] == 200
    vllm = await make_server(time_scale=0.05)
    for path in ("/get_server_info", "/get_model_info", "/health_generate"):
        assert (await _get(f"{vllm.url}{path}"))[0] == 404  # as vLLM: routers fall back to defaults
