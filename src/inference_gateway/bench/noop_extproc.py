"""A do-nothing ext_proc server speaking the EPP's exact protocol: the floor of the EPP path.

It answers the same messages the EPP answers (deferred headers response, body streamed back,
response headers when Envoy sends them; observer streams read to the end) but parses nothing
and picks endpoints round robin. The latency it adds
over Envoy alone is what Python gRPC plus the ext_proc round trips cost before any of the
EPP's own work; the EPP's added latency minus this is the EPP's own code.

The overhead benchmark runs it as its own process on the EPP's default event loop, like
`inference-gateway epp`, so that its CPU per request is read alone:
    python -m inference_gateway.bench.noop_extproc 127.0.0.1:8000 127.0.0.2:8000
prints `ready <port>` once serving, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
from collections.abc import AsyncIterator

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.envoy.clusters import DESTINATION_HEADER
from inference_gateway.envoy.filters import EXT_PROC_ROLE, OBSERVE_ROLE
from inference_gateway.extproc import messages
from inference_gateway.local.event_loop import loop_runner


class NoopExtProc(pb_grpc.ExternalProcessorServicer):
    def __init__(self, addresses: list[str]) -> None:
        self._next = itertools.cycle(addresses)

    async def Process(
        self, request_iterator: AsyncIterator[pb.ProcessingRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ProcessingResponse]:
        if (EXT_PROC_ROLE, OBSERVE_ROLE) in (context.invocation_metadata() or ()):
            async for _ in request_iterator:  # observability mode: read, never answer
                pass
            return
        body = bytearray()
        async for req in request_iterator:
            kind = req.WhichOneof("request")
            if kind == "request_body":
                body += req.request_body.body
                if req.request_body.end_of_stream:
                    destination = next(self._next)
                    first = messages.continue_headers(
                        {DESTINATION_HEADER: destination}, clear_route_cache=True
                    )
                    first.dynamic_metadata.CopyFrom(
                        messages.metadata_struct({"envoy.lb": {DESTINATION_HEADER: destination}})
                    )
                    yield first
                    for resp in messages.streamed_request_body(bytes(body)):
                        yield resp
            elif kind == "response_headers":
                yield messages.continue_response_headers({})
            elif kind == "response_body":
                yield messages.continue_response_body()
            elif kind == "response_trailers":
                yield pb.ProcessingResponse(response_trailers=pb.TrailersResponse())
            elif kind == "request_trailers":
                yield pb.ProcessingResponse(request_trailers=pb.TrailersResponse())


async def serve_noop(addresses: list[str], host: str = "127.0.0.1") -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    )
    pb_grpc.add_ExternalProcessorServicer_to_server(NoopExtProc(addresses), server)
    port = server.add_insecure_port(f"{host}:0")
    await server.start()
    return server, port


async def _main(addresses: list[str], host: str) -> None:
    server, port = await serve_noop(addresses, host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("ready", port, flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a do-nothing ext_proc server (the overhead floor)")
    parser.add_argument("addresses", nargs="+", help="host:port of each backend, picked round robin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--event-loop", default="auto", choices=("auto", "asyncio", "uvloop"))
    args = parser.parse_args(argv)
    loop_runner(args.event_loop)(_main(args.addresses, args.host))


if __name__ == "__main__":
    main()
