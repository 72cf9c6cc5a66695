"""A do-nothing ext_proc server speaking the EPP's exact protocol: the floor of the EPP path.

It answers the same messages the EPP answers (deferred headers response, body streamed back,
response headers when Envoy sends them; observer streams and access-log streams read to the
end) but parses nothing and picks endpoints round robin. The latency it adds
over Envoy alone is what Python gRPC plus the ext_proc round trips cost before any of the
EPP's own work; the EPP's added latency minus this is the EPP's own code.

Two servers speak it: grpc.aio on an event loop (the EPP's kind), and grpc's synchronous server
with a thread per stream, to measure whether the thread-pool server costs less per request.
The overhead benchmark runs each as its own process, so that its CPU per request is read alone:
    python -m inference_gateway.bench.noop_extproc [--server aio|sync] 127.0.0.1:8000 ...
prints `ready <port>` once serving, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures

import grpc
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.envoy.clusters import DESTINATION_HEADER
from inference_gateway.envoy.filters import EXT_PROC_ROLE, OBSERVE_ROLE
from inference_gateway.extproc import messages
from inference_gateway.local.event_loop import loop_runner

OPTIONS = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
# The sync server holds a thread per open stream, and each request holds two (routing, observer).
SYNC_THREADS = 256


class NoopStream:
    """One routing stream's answers; no parsing, endpoints in turn."""

    def __init__(self, pick: Callable[[], str]) -> None:
        self._pick = pick
        self._body = bytearray()

    def answer(self, req: pb.ProcessingRequest) -> list[pb.ProcessingResponse]:
        kind = req.WhichOneof("request")
        if kind == "request_body":
            self._body += req.request_body.body
            if not req.request_body.end_of_stream:
                return []
            destination = self._pick()
            first = messages.continue_headers({DESTINATION_HEADER: destination}, clear_route_cache=True)
            first.dynamic_metadata.CopyFrom(
                messages.metadata_struct({"envoy.lb": {DESTINATION_HEADER: destination}})
            )
            return [first, *messages.streamed_request_body(bytes(self._body))]
        if kind == "response_headers":
            return [messages.continue_response_headers({})]
        if kind == "response_body":
            return [messages.continue_response_body()]
        if kind == "response_trailers":
            return [pb.ProcessingResponse(response_trailers=pb.TrailersResponse())]
        if kind == "request_trailers":
            return [pb.ProcessingResponse(request_trailers=pb.TrailersResponse())]
        return []


def _observer(context: grpc.ServicerContext | grpc.aio.ServicerContext) -> bool:
    return (EXT_PROC_ROLE, OBSERVE_ROLE) in (context.invocation_metadata() or ())


class NoopExtProc(pb_grpc.ExternalProcessorServicer):
    def __init__(self, addresses: list[str]) -> None:
        self._pick = functools.partial(next, itertools.cycle(addresses))

    async def Process(
        self, request_iterator: AsyncIterator[pb.ProcessingRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ProcessingResponse]:
        if _observer(context):
            async for _ in request_iterator:  # observability mode: read, never answer
                pass
            return
        stream = NoopStream(self._pick)
        async for req in request_iterator:
            for resp in stream.answer(req):
                yield resp


class SyncNoopExtProc(pb_grpc.ExternalProcessorServicer):
    """The same answers from grpc's synchronous server: each stream runs on a pool thread."""

    def __init__(self, addresses: list[str]) -> None:
        self._cycle = itertools.cycle(addresses)
        self._lock = threading.Lock()

    def _pick(self) -> str:
        with self._lock:
            return next(self._cycle)

    def Process(  # type: ignore[override]
        self, request_iterator: Iterator[pb.ProcessingRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.ProcessingResponse]:
        if _observer(context):
            for _ in request_iterator:
                pass
            return
        stream = NoopStream(self._pick)
        for req in request_iterator:
            yield from stream.answer(req)


class NoopAccessLog(als_pb2_grpc.AccessLogServiceServicer):
    """Envoy's access-log streams (response phases "access-log"): each batch received, decoded
    by grpc, and dropped."""

    def __init__(self) -> None:
        self.entries = 0

    async def StreamAccessLogs(
        self,
        request_iterator: AsyncIterator[als_pb2.StreamAccessLogsMessage],
        context: grpc.aio.ServicerContext,
    ) -> als_pb2.StreamAccessLogsResponse:
        async for message in request_iterator:
            self.entries += len(message.http_logs.log_entry)
        return als_pb2.StreamAccessLogsResponse()


class SyncNoopAccessLog(als_pb2_grpc.AccessLogServiceServicer):
    def StreamAccessLogs(  # type: ignore[override]
        self, request_iterator: Iterator[als_pb2.StreamAccessLogsMessage], context: grpc.ServicerContext
    ) -> als_pb2.StreamAccessLogsResponse:
        for _ in request_iterator:
            pass
        return als_pb2.StreamAccessLogsResponse()


async def serve_noop(addresses: list[str], host: str = "127.0.0.1") -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(options=OPTIONS)
    pb_grpc.add_ExternalProcessorServicer_to_server(NoopExtProc(addresses), server)
    als_pb2_grpc.add_AccessLogServiceServicer_to_server(NoopAccessLog(), server)
    port = server.add_insecure_port(f"{host}:0")
    await server.start()
    return server, port


def serve_sync_noop(addresses: list[str], host: str = "127.0.0.1") -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=SYNC_THREADS), options=OPTIONS)
    pb_grpc.add_ExternalProcessorServicer_to_server(SyncNoopExtProc(addresses), server)
    als_pb2_grpc.add_AccessLogServiceServicer_to_server(SyncNoopAccessLog(), server)
    port = server.add_insecure_port(f"{host}:0")
    server.start()
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


def _main_sync(addresses: list[str], host: str) -> None:
    server, port = serve_sync_noop(addresses, host)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("ready", port, flush=True)
    stop.wait()
    server.stop(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a do-nothing ext_proc server (the overhead floor)")
    parser.add_argument("addresses", nargs="+", help="host:port of each backend, picked round robin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--server", default="aio", choices=("aio", "sync"), help="grpc.aio or grpc's thread pool"
    )
    parser.add_argument("--event-loop", default="auto", choices=("auto", "asyncio", "uvloop"))
    args = parser.parse_args(argv)
    if args.server == "sync":
        _main_sync(args.addresses, args.host)
    else:
        loop_runner(args.event_loop)(_main(args.addresses, args.host))


if __name__ == "__main__":
    main()
