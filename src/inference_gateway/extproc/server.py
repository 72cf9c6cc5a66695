"""The EPP's gRPC ext_proc server: Envoy streams each HTTP request through `Process`.

Works with the request body sent BUFFERED (headers answered at once, routing on the body
response) or FULL_DUPLEX_STREAMED (headers answer deferred until the body is complete, then
the body is streamed back), which is what upstream gateways configure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.envoy.bootstrap import (
    EXT_PROC_ROLE,
    OBSERVE_ROLE,
    RESPONSE_METADATA,
    ROUTE_OBSERVED_ROLE,
)
from inference_gateway.extproc import messages
from inference_gateway.extproc.observe import ResponseObserver
from inference_gateway.requestcontrol.director import Director, RequestContext
from inference_gateway.requestcontrol.errors import GatewayError
from inference_gateway.requestcontrol.resolve import POOL_HEADER

log = logging.getLogger(__name__)

FULL_DUPLEX = processing_mode_pb2.ProcessingMode.FULL_DUPLEX_STREAMED
SERVED_HEADER = "x-gateway-destination-endpoint-served"
EXPLAIN_RESPONSE_HEADER = "x-gateway-explain"


@dataclass(eq=False)  # identity semantics: states live in a set while their stream is open
class StreamState:
    duplex: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    ctx: RequestContext | None = None
    routed: bool = False
    # The pool Envoy routed to, from the route's gRPC initial metadata (multi-pool gateways);
    # it overrides any x-gateway-inference-pool header the client sent.
    route_pool: str | None = None
    passthrough: bool = False  # a body-less request, left to the cluster's own balancing
    # The response arrives on an observer stream (EnvoyConfig.response_phases "observe"): once
    # routed, the context is handed to the ResponseObserver, which completes it.
    observed: bool = False
    handed_over: bool = False
    # The exchange is over (last response byte seen, or an immediate response sent): the EPP
    # closes the stream itself rather than wait for Envoy to reset it (see Process).
    finished: bool = False
    # Draining: the handler task, whether it waits for Envoy's next message, and whether a
    # cancellation of that wait means "detach" rather than "the client went away".
    task: asyncio.Task[Any] | None = None
    reading: bool = False
    detaching: bool = False

    @property
    def decided(self) -> bool:
        """Envoy holds the routing decision: the rest of the stream can go on without the EPP."""
        return self.routed or self.passthrough


def _headers_of(msg: pb.HttpHeaders) -> dict[str, str]:
    out: dict[str, str] = {}
    for h in msg.headers.headers:
        out[h.key.lower()] = h.raw_value.decode("utf-8", "replace") if h.raw_value else h.value
    return out


def _served_address(req: pb.ProcessingRequest) -> str | None:
    attrs = req.attributes.get("envoy.filters.http.ext_proc")
    if attrs is not None and "upstream.address" in attrs.fields:
        return attrs.fields["upstream.address"].string_value or None
    lb = req.metadata_context.filter_metadata.get("envoy.lb")
    if lb is not None and SERVED_HEADER in lb.fields:
        return lb.fields[SERVED_HEADER].string_value or None
    return None


def _metadata_value(context: grpc.aio.ServicerContext | None, name: str) -> str | None:
    metadata = context.invocation_metadata() if context is not None else None
    for key, value in metadata or ():
        if key == name:
            return value if isinstance(value, str) else value.decode()
    return None


class ExtProcServicer(pb_grpc.ExternalProcessorServicer):
    def __init__(self, director: Director) -> None:
        self.director = director
        self.draining = False
        self._streams: set[StreamState] = set()
        self.observer = ResponseObserver(director)

    def drain(self) -> None:
        """Shutting down: end every stream whose request is already routed with an OK status.

        Envoy's ext_proc filter treats a clean close as "no more processing" and lets the
        request and its response carry on, so in-flight generations survive an EPP restart
        (FailClose included); streams still being routed finish routing first, then detach.
        """
        self.draining = True
        for state in self._streams:
            if state.decided and state.reading and state.task is not None:
                state.detaching = True
                state.task.cancel()

    async def Process(
        self, request_iterator: AsyncIterator[pb.ProcessingRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ProcessingResponse]:
        role = _metadata_value(context, EXT_PROC_ROLE)
        if role == OBSERVE_ROLE:
            await self.observer.observe(request_iterator)
            return
        state = StreamState(
            route_pool=_metadata_value(context, POOL_HEADER),
            task=asyncio.current_task(),
            observed=role == ROUTE_OBSERVED_ROLE,
        )
        self._streams.add(state)
        requests = aiter(request_iterator)
        try:
            # Returning ends the RPC with OK. Waiting for Envoy instead would end most streams
            # with a reset, and grpcio's asyncio server leaks native memory on every reset RPC.
            while not state.finished and not (self.draining and state.decided):
                req = await self._next(state, requests)
                if req is None:
                    break
                for resp in await self._handle(state, req):
                    yield resp
        except asyncio.CancelledError:
            log.debug("ext_proc stream cancelled (client went away)")
            raise
        finally:
            self._streams.discard(state)
            if state.ctx is not None and not state.handed_over:
                self.director.on_complete(state.ctx)

    async def _next(
        self, state: StreamState, requests: AsyncIterator[pb.ProcessingRequest]
    ) -> pb.ProcessingRequest | None:
        """Envoy's next message; None when the stream ends or the EPP detaches from it."""
        state.reading = True
        try:
            return await anext(requests)
        except StopAsyncIteration:
            return None
        except asyncio.CancelledError:
            if not state.detaching or state.task is None:
                raise
            state.task.uncancel()
            return None
        finally:
            state.reading = False

    async def _handle(self, state: StreamState, req: pb.ProcessingRequest) -> list[pb.ProcessingResponse]:
        kind = req.WhichOneof("request")
        if req.HasField("protocol_config"):
            state.duplex = req.protocol_config.request_body_mode == FULL_DUPLEX
        if kind == "request_headers":
            return self._on_request_headers(state, req.request_headers)
        if kind == "request_body":
            return await self._on_request_body(state, req.request_body)
        if kind == "request_trailers":
            return await self._on_request_trailers(state)
        if kind == "response_headers":
            state.finished = req.response_headers.end_of_stream
            return [self._on_response_headers(state, req)]
        if kind == "response_body":
            body = req.response_body
            if state.ctx is not None:
                self.director.on_response_body(state.ctx, body.body, body.end_of_stream)
            if body.end_of_stream:
                # No reply: closing the stream (see Process) lets Envoy pass the last chunk on
                # unchanged, and a close alone cannot race Envoy's reset of the stream.
                state.finished = True
                return []
            return [messages.continue_response_body()]
        if kind == "response_trailers":
            state.finished = True
            return [pb.ProcessingResponse(response_trailers=pb.TrailersResponse())]
        return []

    def _on_request_headers(self, state: StreamState, msg: pb.HttpHeaders) -> list[pb.ProcessingResponse]:
        state.headers = _headers_of(msg)
        if state.route_pool:
            state.headers[POOL_HEADER] = state.route_pool
        state.ctx = self.director.new_context(state.headers)
        state.passthrough = msg.end_of_stream
        if msg.end_of_stream or not state.duplex:
            # Body-less requests (GET /v1/models) go to the cluster's own balancing.
            return [messages.continue_headers()]
        return []

    async def _on_request_body(self, state: StreamState, msg: pb.HttpBody) -> list[pb.ProcessingResponse]:
        if state.routed:
            return [messages.continue_request_body()]
        state.body += msg.body
        limit = self.director.max_body_bytes
        if len(state.body) > limit:
            # Not `finished`: Envoy may still be streaming the body; it closes the stream itself.
            err = GatewayError(413, f"request body exceeds the {limit} byte limit", "body_too_large")
            return [messages.immediate_error(err)]
        if not msg.end_of_stream:
            return [] if state.duplex else [messages.continue_request_body()]
        return await self._route(state)

    async def _on_request_trailers(self, state: StreamState) -> list[pb.ProcessingResponse]:
        if state.routed:
            return [pb.ProcessingResponse(request_trailers=pb.TrailersResponse())]
        return await self._route(state)

    async def _route(self, state: StreamState) -> list[pb.ProcessingResponse]:
        if state.ctx is None:  # a body without headers: out of protocol, but answer it anyway
            state.ctx = self.director.new_context(state.headers)
        state.routed = True
        try:
            decision = await self.director.route(state.ctx, bytes(state.body))
        except GatewayError as err:
            log.info("request %s rejected: %d %s", state.ctx.request_id, err.status, err.message)
            state.finished = True
            return [messages.immediate_error(err)]
        if state.observed:
            self.observer.expect(state.ctx)
            state.handed_over = True
        body = decision.body if decision.body is not None else bytes(state.body)
        headers = dict(decision.headers)
        if decision.body is not None:
            headers["content-length"] = str(len(body))
        metadata = decision.metadata
        if state.observed and state.ctx.explanation and state.ctx.headers.get(EXPLAIN_RESPONSE_HEADER):
            # No response phase here: Envoy adds the header from this metadata.
            metadata = {**metadata, RESPONSE_METADATA: {"explain": state.ctx.explanation}}
        meta = messages.metadata_struct(metadata)
        if state.duplex:
            first = messages.continue_headers(headers, clear_route_cache=True, remove=decision.remove_headers)
            first.dynamic_metadata.CopyFrom(meta)
            return [first, *messages.streamed_request_body(body)]
        resp = messages.buffered_request_body(headers, decision.body, decision.remove_headers)
        resp.dynamic_metadata.CopyFrom(meta)
        return [resp]

    def _on_response_headers(self, state: StreamState, req: pb.ProcessingRequest) -> pb.ProcessingResponse:
        ctx = state.ctx
        if ctx is None or ctx.picked is None:
            return messages.continue_response_headers({})
        status = 0
        for h in req.response_headers.headers.headers:
            if h.key == ":status":
                status = int((h.raw_value or h.value.encode()).decode() or 0)
        served = _served_address(req) or ctx.picked.address
        self.director.on_response_headers(ctx, status, served)
        headers = {SERVED_HEADER: served}
        headers.update(ctx.response_headers)
        if ctx.explanation and ctx.headers.get("x-gateway-explain"):
            headers[EXPLAIN_RESPONSE_HEADER] = ctx.explanation
        return messages.continue_response_headers(headers)


async def serve(
    director: Director,
    host: str,
    port: int,
    credentials: grpc.ServerCredentials | None = None,
    servicer: ExtProcServicer | None = None,
) -> tuple[grpc.aio.Server, int]:
    # Envoy may coalesce a fast client's body into chunks far larger than its usual 64 KiB when
    # the ext_proc stream is backed up; the body limit is enforced by counting, not by gRPC.
    max_msg = max(4 * director.max_body_bytes, 64 * 1024 * 1024)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_msg),
            ("grpc.max_send_message_length", max_msg),
        ]
    )
    pb_grpc.add_ExternalProcessorServicer_to_server(servicer or ExtProcServicer(director), server)
    address = f"{host}:{port}"
    bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    await server.start()
    return server, bound
