"""The unmodified `openai` client talks to the real Envoy, which asks our EPP where to send each request."""

from __future__ import annotations

import logging

import aiohttp
import openai
import orjson
import pytest

from inference_gateway.local.stack import LocalStack

pytestmark = pytest.mark.e2e

SERVED = "x-gateway-destination-endpoint-served"


def client(stack: LocalStack) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=stack.base_url, api_key="unused", max_retries=0, timeout=30)


async def test_completions_and_chat_stream_and_non_stream(stack: LocalStack) -> None:
    c = client(stack)
    pod_addresses = {a for p in stack.pods for a in p.addresses}

    raw = await c.completions.with_raw_response.create(
        model="food-review", prompt="Rate this pizza", max_tokens=8
    )
    completion = raw.parse()
    assert completion.choices[0].text
    assert completion.usage is not None and completion.usage.completion_tokens == 8
    assert raw.headers[SERVED] in pod_addresses
    # The canary split sent one of the adapters to the server; the client sees the name it asked for.
    assert completion.model == "food-review"

    chat = await c.chat.completions.create(
        model="meta-llama/Llama-2-7b-hf", messages=[{"role": "user", "content": "Hi there"}], max_tokens=5
    )
    assert chat.choices[0].message.content
    assert chat.model == "meta-llama/Llama-2-7b-hf"

    pieces = []
    stream = await c.chat.completions.create(
        model="food-review",
        messages=[{"role": "user", "content": "Stream please"}],
        max_tokens=6,
        stream=True,
    )
    async for chunk in stream:
        assert chunk.model == "food-review"
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    assert len(pieces) == 6

    text_pieces = []
    cstream = await c.completions.create(model="food-review", prompt="Once upon", max_tokens=4, stream=True)
    async for chunk in cstream:
        if chunk.choices:
            text_pieces.append(chunk.choices[0].text)
    assert len([p for p in text_pieces if p]) == 4


async def test_models_listing_has_the_public_names_and_the_pods_models(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    models = await client(stack).models.list()
    ids = {m.id for m in models.data}
    public = {m.model_name for m in stack.resources.models}
    assert public <= ids and "food-review" in ids  # what a client may send, from the InferenceModels
    assert "meta-llama/Llama-2-7b-hf" in ids and {"food-review-1", "food-review-2"} <= ids  # the pods'
    async with aiohttp.ClientSession() as s, s.get(f"{stack.base_url}/models") as r:
        rid = r.headers["x-request-id"]
    assert any(rid in rec.getMessage() and "/v1/models" in rec.getMessage() for rec in caplog.records)


async def test_request_id_in_the_response_matches_the_log(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = {"model": "food-review", "prompt": "hi", "max_tokens": 1}
    url = f"{stack.base_url}/completions"
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json=body, headers={"x-gateway-explain": "true"}) as r:
            assert r.status == 200
            rid = r.headers["x-request-id"]
            explain = orjson.loads(r.headers["x-gateway-explain"])
        async with s.post(url, data=b'{"model": ', headers={"content-type": "application/json"}) as r:
            assert r.status == 400
            rejected = r.headers["x-request-id"]
    assert explain["model"] == "food-review" and explain["target_model"] in ("food-review-1", "food-review-2")
    lines = [rec.getMessage() for rec in caplog.records]
    assert any(rid in line and "food-review" in line for line in lines)
    assert any(rejected in line and "rejected" in line for line in lines)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"model": "food-review", "prompt": ', 400, "invalid_json"),
        (b'{"model": 7, "prompt": "x"}', 400, "invalid_model"),
        (b"[1, 2, 3]", 400, "invalid_json"),
    ],
)
async def test_bad_requests_get_openai_errors(stack: LocalStack, body: bytes, status: int, code: str) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{stack.base_url}/completions", data=body, headers={"content-type": "application/json"}
        ) as resp,
    ):
        payload = await resp.json(content_type=None)
        assert resp.status == status
        assert resp.headers["content-type"] == "application/json"
    assert set(payload["error"]) >= {"message", "type", "code"}
    assert payload["error"]["code"] == code
    assert "Traceback" not in payload["error"]["message"]


async def test_openai_client_sees_not_found(stack: LocalStack) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        await client(stack).completions.create(model="gpt-unknown", prompt="x", max_tokens=1)
    assert err.value.status_code == 404
