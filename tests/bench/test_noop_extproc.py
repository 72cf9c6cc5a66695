"""The no-op ext_proc floor: both servers (grpc.aio and the sync thread pool) answer alike."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.bench.noop_extproc import serve_noop, serve_sync_noop
from inference_gateway.envoy.clusters import DESTINATION_HEADER
from inference_gateway.envoy.filters import EXT_PROC_ROLE, OBSERVE_ROLE
from tests.extproc.test_extproc_protocol import headers_msg

ADDRESSES = ["10.0.0.1:8000", "10.0.0.2:8000"]


def _routing_stream(body: bytes) -> list[pb.ProcessingRequest]:
    half = len(body) // 2
    return [
        pb.ProcessingRequest(request_headers=headers_msg()),
        pb.ProcessingRequest(request_body=pb.HttpBody(body=body[:half])),
        pb.ProcessingRequest(request_body=pb.HttpBody(body=body[half:], end_of_stream=True)),
    ]


async def _answers(
    port: int, requests: list[pb.ProcessingRequest], role: str | None = None
) -> list[pb.ProcessingResponse]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.ExternalProcessorStub(channel)

        async def send() -> AsyncIterator[pb.ProcessingRequest]:
            for req in requests:
                yield req

        metadata = ((EXT_PROC_ROLE, role),) if role else None
        return [resp async for resp in stub.Process(send(), metadata=metadata)]


def _destination(resp: pb.ProcessingResponse) -> str:
    return resp.dynamic_metadata.fields["envoy.lb"].struct_value.fields[DESTINATION_HEADER].string_value


async def test_aio_and_sync_noop_servers_route_in_turn_and_stream_the_body_back() -> None:
    aio_server, aio_port = await serve_noop(ADDRESSES)
    sync_server, sync_port = serve_sync_noop(ADDRESSES)
    try:
        body = b'{"model": "m", "prompt": "hello"}'
        for port in (aio_port, sync_port):
            first = await _answers(port, _routing_stream(body))
            second = await _answers(port, _routing_stream(body))
            # the route rides on the headers answer, then the whole body comes back, in one piece
            assert [r.WhichOneof("response") for r in first] == ["request_headers", "request_body"]
            assert first[1].request_body.response.body_mutation.streamed_response.body == body
            assert first[1].request_body.response.body_mutation.streamed_response.end_of_stream
            assert [_destination(first[0]), _destination(second[0])] == ADDRESSES  # round robin
            # an observer stream is read to its end and never answered (observability mode)
            assert await _answers(port, _routing_stream(body), role=OBSERVE_ROLE) == []
    finally:
        await aio_server.stop(0)
        sync_server.stop(0)


async def test_both_noop_servers_take_access_log_streams() -> None:
    aio_server, aio_port = await serve_noop(ADDRESSES)
    sync_server, sync_port = serve_sync_noop(ADDRESSES)
    try:
        for port in (aio_port, sync_port):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = als_pb2_grpc.AccessLogServiceStub(channel)

                async def batches() -> AsyncIterator[als_pb2.StreamAccessLogsMessage]:
                    for i in range(3):
                        msg = als_pb2.StreamAccessLogsMessage()
                        msg.http_logs.log_entry.add().request.request_id = str(i)
                        yield msg

                assert await stub.StreamAccessLogs(batches()) == als_pb2.StreamAccessLogsResponse()
    finally:
        await aio_server.stop(0)
        sync_server.stop(0)
