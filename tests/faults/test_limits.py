"""Request limits through the real Envoy, in both request-body modes: FULL_DUPLEX_STREAMED
(FailClose pools) and BUFFERED (FailOpen pools)."""

from __future__ import annotations

from pathlib import Path

import grpc
import orjson
import pytest
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.extproc.server import serve
from inference_gateway.local.stack import LocalStack
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from tests.extproc.test_extproc_protocol import request_stream
from tests.faults.client import MODEL, send, session, settle
from tests.faults.conftest import small_stack
from tests.helpers import make_store

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


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["FailClose", "FailOpen"])
async def test_request_limits(tmp_path: Path, mode: str) -> None:
    stack = await small_stack(tmp_path, failure_mode=mode)
    try:
        await check_limits(stack)
    finally:
        await stack.stop()


async def test_a_body_message_as_large_as_envoys_buffer_gets_a_413() -> None:
    """Under load Envoy may send everything it buffered for the connection (the body limit plus
    1 MiB) in one ext_proc message; the EPP must still answer 413, not fail the gRPC stream."""
    limit = 4096
    director = Director(make_store(), PoolRuntime(load_config(), flow_control=False), max_body_bytes=limit)
    server, port = await serve(director, "127.0.0.1", 0)
    try:
        body = orjson.dumps({"model": "base-model", "prompt": "x" * (limit + MIB)})
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.ExternalProcessorStub(channel)
            call = stub.Process(iter(request_stream("duplex", body, chunk=len(body))))
            first = await call.read()
            call.cancel()
        assert isinstance(first, pb.ProcessingResponse)
        assert first.immediate_response.status.code == 413
    finally:
        await server.stop(0)
