"""Through the real ext_proc gRPC server: a client that goes away while queued leaves the queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import orjson
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2 as mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.extproc.server import serve
from inference_gateway.flowcontrol import QueueOutcome

from .test_flow_director import datastore, director

BUFFERED = pb.ProtocolConfiguration(request_body_mode=mode_pb2.ProcessingMode.BUFFERED)


def request_messages(model: str) -> list[pb.ProcessingRequest]:
    headers = pb.HttpHeaders(
        headers=base_pb2.HeaderMap(
            headers=[
                base_pb2.HeaderValue(key=":path", raw_value=b"/v1/chat/completions"),
                base_pb2.HeaderValue(key="x-gateway-inference-fairness-id", raw_value=b"tenant-x"),
            ]
        )
    )
    body = orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    return [
        pb.ProcessingRequest(request_headers=headers, protocol_config=BUFFERED),
        pb.ProcessingRequest(request_body=pb.HttpBody(body=body, end_of_stream=True)),
    ]


async def test_closing_the_stream_while_queued_removes_the_request() -> None:
    d = director(datastore(pods=1), {})
    assert d.runtimes.default.flow is not None
    first = d.new_context({})
    await d.route(first, orjson.dumps({"model": "chat"}))  # fills the only endpoint
    server, port = await serve(d, "127.0.0.1", 0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.ExternalProcessorStub(channel)
            stay_open = asyncio.Event()

            async def envoy_side() -> AsyncIterator[pb.ProcessingRequest]:
                for msg in request_messages("chat"):
                    yield msg
                await stay_open.wait()

            call = stub.Process(envoy_side())
            assert (await call.read()).HasField("request_headers")
            for _ in range(100):
                if d.runtimes.default.flow.queued(flow_id="tenant-x") == 1:
                    break
                await asyncio.sleep(0.01)
            assert d.runtimes.default.flow.queued(flow_id="tenant-x") == 1
            call.cancel()  # what Envoy does when the downstream client disconnects
            for _ in range(100):
                if d.runtimes.default.flow.queued() == 0:
                    break
                await asyncio.sleep(0.01)
            assert d.runtimes.default.flow.queued() == 0
            assert d.runtimes.default.flow.outcomes[QueueOutcome.EVICTED_CONTEXT_CANCELLED] == 1
            stay_open.set()
    finally:
        await server.stop(0)
    d.on_complete(first)
    assert first.picked is not None and first.picked.in_flight == 0
