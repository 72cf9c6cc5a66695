"""The EPP ends each ext_proc stream itself, with OK, once the exchange is over.

Envoy otherwise ends every stream with a reset, and grpcio's asyncio server leaks native memory
on each reset RPC (about 150 bytes; the soak test found it as linear RSS growth). When the last
response chunk arrives, the EPP closes the stream without replying: Envoy then passes that chunk
on unchanged, and a close alone cannot race Envoy's reset.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import orjson
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.extproc.server import serve
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from tests.extproc.test_extproc_protocol import headers_msg, request_stream
from tests.helpers import make_store


async def test_the_epp_closes_the_stream_after_the_last_response_chunk() -> None:
    store = make_store()
    server, port = await serve(
        Director(store, PoolRuntime(load_config(), flow_control=False)), "127.0.0.1", 0
    )
    envoy_done = asyncio.Event()
    msgs = request_stream("duplex", orjson.dumps({"model": "base-model", "prompt": "hi"}), chunk=1000)
    status = headers_msg({":status": "200"}).headers
    msgs.append(pb.ProcessingRequest(response_headers=pb.HttpHeaders(headers=status)))
    msgs.append(pb.ProcessingRequest(response_body=pb.HttpBody(body=b'{"choices": []}', end_of_stream=False)))
    msgs.append(pb.ProcessingRequest(response_body=pb.HttpBody(body=b"", end_of_stream=True)))

    async def envoy() -> AsyncIterator[pb.ProcessingRequest]:
        for m in msgs:
            yield m
        await envoy_done.wait()  # never half-closes: only the server can end the call

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = pb_grpc.ExternalProcessorStub(channel).Process(envoy())

            async def read_all() -> list[pb.ProcessingResponse]:
                return [r async for r in call]

            replies = await asyncio.wait_for(read_all(), 5)  # times out if the EPP waits for Envoy
            assert await call.code() == grpc.StatusCode.OK
        kinds = [r.WhichOneof("response") for r in replies]
        # routing (headers + streamed body), response headers, the first body chunk; no reply
        # to the last one
        assert kinds == ["request_headers", "request_body", "response_headers", "response_body"]
        assert sum(e.in_flight for e in store.endpoints()) == 0  # the request completed
    finally:
        envoy_done.set()
        await server.stop(0)
