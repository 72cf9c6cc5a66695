"""Request limits through the real Envoy, in both request-body modes: FULL_DUPLEX_STREAMED
(FailClose pools) and BUFFERED (FailOpen pools)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from inference_gateway.local.stack import LocalStack
from tests.faults.client import MODEL, send, session, settle
from tests.faults.conftest import small_stack

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
LIMIT = 16 * MIB  # the default max request body (EnvoyConfig / EPPOptions max_request_bytes)


def padded(size: int, **extra: object) -> bytes:
    """A valid completion request of about `size` bytes; the padding field is ignored by servers."""
    head = {"model": MODEL, "prompt": "hi", "max_tokens": 2, **extra}
    base = len(orjson.dumps(head | {"padding": ""}))
    return orjson.dumps(head | {"padding": "x" * max(0, size - base)})


def nested(depth: int) -> bytes:
    return b'{"model": "%s", "prompt": "hi", "max_tokens": 2, "x": ' % MODEL.encode() + (
        b"[" * depth + b"]" * depth + b"}"
    )


async def check_limits(stack: LocalStack) -> None:
    url = f"{stack.base_url}/completions"
    async with session() as s:
        # Just under the limit: forwarded and served.
        assert (await send(s, url, padded(LIMIT - 64 * 1024))).kind == "ok"
        # Over it, by a little (the EPP counts) or by a lot (Envoy's buffer limit may answer
        # first in BUFFERED mode): either way a 413 in OpenAI JSON, never a hang or a reset.
        for size in (LIMIT + 1024, LIMIT + 4 * MIB, 40 * MIB):
            o = await send(s, url, padded(size))
            assert (o.kind, o.status) == ("error", 413), (size, o)
            assert o.error is not None and o.error["type"] == "invalid_request_error"
            assert o.seconds < 10
        # orjson caps nesting at 1024 levels: deeper is a 400, and parsing stays linear.
        o = await send(s, url, nested(1025))
        assert (o.kind, o.status) == ("error", 400) and o.error is not None
        assert o.error["code"] == "invalid_json" and "depth" in o.error["message"]
        assert (await send(s, url, nested(1000))).kind == "ok"
        # Oversized headers (Envoy: 60 KiB, 100 headers): refused at once. With ext_proc on the
        # path Envoy closes the connection instead of answering 431 (docs/reliability.md).
        for headers in ({"x-big": "a" * 70_000}, {f"x-h{i}": "a" for i in range(120)}):
            o = await send(s, url, padded(100), headers=headers)
            assert o.kind in ("disconnected", "error"), o
            assert o.kind == "disconnected" or o.status == 431
            assert o.seconds < 5
        # The gateway is unharmed.
        assert (await send(s, url, padded(100))).kind == "ok"
    await settle(stack)


@pytest.mark.parametrize("mode", ["FailClose", "FailOpen"])
async def test_request_limits(tmp_path: Path, mode: str) -> None:
    stack = await small_stack(tmp_path, failure_mode=mode)
    try:
        await check_limits(stack)
    finally:
        await stack.stop()
