"""A real ext_proc gRPC server for one EndpointPickerConfig, and gRPC-bodied request streams,
for the tests of the parsers and reporters that need their own config."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2 as mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.extproc.server import serve
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from tests.extproc.test_extproc_protocol import headers_msg
from tests.extproc.test_processing_modes import body_msgs, config
from tests.helpers import make_store


@contextlib.asynccontextmanager
async def extproc_client(config_text: str) -> AsyncIterator[pb_grpc.ExternalProcessorStub]:
    director = Director(make_store(), PoolRuntime(load_config(config_text), flow_control=False))
    server, port = await serve(director, "127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield pb_grpc.ExternalProcessorStub(channel)
    finally:
        await channel.close()
        await server.stop(0)


def grpc_request(body: bytes, path: str) -> list[pb.ProcessingRequest]:
    """A gRPC call's headers and its body in 16-byte chunks, in FULL_DUPLEX_STREAMED mode."""
    head = pb.ProcessingRequest(
        request_headers=headers_msg({":path": path, "content-type": "application/grpc"}),
        protocol_config=config(mode_pb2.ProcessingMode.FULL_DUPLEX_STREAMED),
    )
    return [head, *body_msgs(body, 16)]
