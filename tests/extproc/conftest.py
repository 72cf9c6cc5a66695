"""A real ext_proc gRPC server over a three-pod store, for the protocol tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.extproc.server import serve
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from tests.helpers import make_store


@pytest.fixture
async def stub() -> AsyncIterator[tuple[pb_grpc.ExternalProcessorStub, Director]]:
    store = make_store()
    director = Director(store, PoolRuntime(load_config(), flow_control=False), max_body_bytes=1024)
    server, port = await serve(director, "127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield pb_grpc.ExternalProcessorStub(channel), director
    finally:
        await channel.close()
        await server.stop(0)
