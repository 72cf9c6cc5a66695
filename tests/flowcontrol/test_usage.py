"""Usage parsing from response bodies, streamed in arbitrary chunks."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.requestcontrol.usage import MAX_USAGE_BYTES, Usage, UsageScanner

USAGE = {
    "prompt_tokens": 17,
    "completion_tokens": 42,
    "total_tokens": 59,
    "prompt_tokens_details": {"cached_tokens": 16},
}


def chat_completion(content: str = "Hello!") -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "m",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": USAGE,
            "prompt_logprobs": None,
        }
    )


def sse_stream(n_chunks: int = 5, include_usage: bool = True) -> bytes:
    events = []
    for i in range(n_chunks):
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": f"t{i}"}}],
        }
        events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    if include_usage:
        final = {"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": USAGE}
        events.append(b"data: " + orjson.dumps(final) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return b"".join(events)


def scan(body: bytes, chunk_size: int) -> UsageScanner:
    scanner = UsageScanner()
    for i in range(0, len(body), chunk_size):
        scanner.feed(body[i : i + chunk_size])
    return scanner


EXPECTED = Usage(prompt_tokens=17, completion_tokens=42, total_tokens=59, cached_tokens=16)


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 64, 100_000])
def test_non_streaming_body(chunk_size: int) -> None:
    assert scan(chat_completion(), chunk_size).usage == EXPECTED


@pytest.mark.parametrize("chunk_size", [1, 3, 50, 100_000])
def test_last_sse_chunk_with_include_usage(chunk_size: int) -> None:
    assert scan(sse_stream(), chunk_size).usage == EXPECTED


def test_stream_without_usage_has_none() -> None:
    assert scan(sse_stream(include_usage=False), 16).usage is None


def test_continuous_usage_keeps_the_last_report() -> None:
    body = b"".join(
        b"data: "
        + orjson.dumps({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": n}})
        + b"\n\n"
        for n in (1, 2, 3)
    )
    usage = scan(body + b"data: [DONE]\n\n", 10).usage
    assert usage is not None and usage.completion_tokens == 3 and usage.total_tokens == 8


def test_usage_text_inside_generated_content_is_ignored() -> None:
    trap = 'the JSON was {"usage": {"prompt_tokens": 999}} ok'
    body = chat_completion(trap)
    assert b'\\"usage\\"' in body
    assert scan(body, 5).usage == EXPECTED


def test_null_usage_is_ignored() -> None:
    body = b'data: {"choices":[],"usage":null}\n\ndata: [DONE]\n\n'
    assert scan(body, 4).usage is None


def test_responses_api_field_names() -> None:
    body = orjson.dumps({"output": [], "usage": {"input_tokens": 3, "output_tokens": 4}})
    assert scan(body, 3).usage == Usage(3, 4, 7, 0)


def test_memory_stays_bounded_on_a_broken_usage_object() -> None:
    scanner = UsageScanner()
    scanner.feed(b'{"usage": {"prompt_tokens": 1, "junk": "')
    for _ in range(100):
        scanner.feed(b"x" * 1000)
        assert scanner.buffered_bytes <= MAX_USAGE_BYTES + 1000
    assert scanner.usage is None
    scanner.feed(b'"}, "usage": {"prompt_tokens": 2, "completion_tokens": 1}}')
    assert scanner.usage == Usage(2, 1, 3, 0)


@given(st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=40), st.text(max_size=300))
def test_any_chunking_of_any_content_finds_the_usage(cuts: list[int], content: str) -> None:
    body = chat_completion(content)
    scanner = UsageScanner()
    pos = 0
    for cut in cuts:
        scanner.feed(body[pos : pos + cut])
        pos += cut
    scanner.feed(body[pos:])
    assert scanner.usage == EXPECTED
