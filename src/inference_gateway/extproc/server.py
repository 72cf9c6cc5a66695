"""The EPP's gRPC ext_proc server: Envoy streams each HTTP request through `Process`.

Every processing mode Envoy may be configured with works (see modes.py): the route rides on the
request-headers answer when Envoy lets the body arrive first (FULL_DUPLEX_STREAMED, or any body
mode with send_body_without_waiting_for_header_response), on the body answer in BUFFERED mode,
and is picked from the headers alone when the body cannot be seen first (NONE, plain STREAMED,
body-less requests). Responses get the client's model name back in every body mode
(response_body.py). Per-stream state lives in state.py, readers of Envoy's messages in
reading.py, builders of the answers in messages.py.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.envoy.filters import (
    EXT_PROC_ROLE,
    OBSERVE_ROLE,
    RESPONSE_METADATA,
    RESPONSE_PHASES_HEADER,
    RESPONSE_PHASES_SEND,
    RESPONSE_ROLE,
    ROUTE_OBSERVED_ROLE,
)
from inference_gateway.extproc import messages
from inference_gateway.extproc.access_log import AccessLogServicer, add_access_log_service
from inference_gateway.extproc.modes import (
    BUFFERED_PARTIAL,
    FULL_DUPLEX,
    BodyModes,
    rewriter_for,
)
from inference_gateway.extproc.observe import ResponseObserver, request_id_attribute
from inference_gateway.extproc.reading import (
    SERVED_HEADER,
    headers_of,
    metadata_value,
    served_address,
    subset_hint,
)
from inference_gateway.extproc.response_body import answer_response_body, flush_response_body
from inference_gateway.extproc.state import StreamState
from inference_gateway.requestcontrol.director import Director, RequestContext, RoutingDecision
from inference_gateway.requestcontrol.errors import GatewayError
from inference_gateway.requestcontrol.model_list import is_models_listing, models_body
from inference_gateway.requestcontrol.resolve import POOL_HEADER

log = logging.getLogger(__name__)

EXPLAIN_RESPONSE_HEADER = "x-gateway-explain"


class ExtProcServicer(pb_grpc.ExternalProcessorServicer):
    def __init__(self, director: Director) -> None:
        self.director = director
        self.draining = False
        self._streams: set[StreamState] = set()
        self.observer = ResponseObserver(director)
        self.access_log: AccessLogServicer | None = None  # set by serve()

    def drain(self) -> None:
        """Shutting down: end every stream whose request is already routed with an OK status.

        Envoy's ext_proc filter treats a clean close as "no more processing" and lets the
        request and its response carry on, so in-flight generations survive an EPP restart
        (FailClose included); streams still being routed finish routing first, then detach.
        """
        self.draining = True
        if self.access_log is not None:
            self.access_log.drain()
        for state in self._streams:
            if state.decided and state.reading and state.task is not None:
                state.detaching = True
                state.task.cancel()

    async def Process(
        self, request_iterator: AsyncIterator[pb.ProcessingRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ProcessingResponse]:
        role = metadata_value(context, EXT_PROC_ROLE)
        if role == OBSERVE_ROLE:
            await self.observer.observe(request_iterator)
            return
        state = StreamState(
            route_pool=metadata_value(context, POOL_HEADER),
            peer=context.peer() if context is not None else None,
            task=asyncio.current_task(),
            observed=role == ROUTE_OBSERVED_ROLE,
        )
        self._streams.add(state)
        requests = aiter(request_iterator)
        if role == RESPONSE_ROLE:
            requests = await self._response_stream(state, requests)
        try:
            # Returning ends the RPC with OK. Waiting for Envoy instead would end most streams
            # with a reset, and grpcio's asyncio server leaks native memory on every reset RPC.
            while not state.finished and not (self.draining and state.decided):
                req = await self._next(state, requests)
                if state.abort_error is not None:
                    state.finished = True
                    yield messages.immediate_error(state.abort_error)
                    break
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

    async def _response_stream(
        self, state: StreamState, requests: AsyncIterator[pb.ProcessingRequest]
    ) -> AsyncIterator[pb.ProcessingRequest]:
        """A response-only stream for a routed request (observe mode, model name rewritten):
        its context comes from the routing stream, found by the request id on the first message."""
        first = await anext(requests, None)
        if first is None:
            return requests
        state.ctx = self.observer.claim(request_id_attribute(first), responding=True)
        state.routed = True
        if state.ctx is not None and state.ctx.resolution is not None:
            state.rewriter = rewriter_for(state.ctx.resolution.target_model, state.ctx.resolution.model)
        return _prepend(first, requests)

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
            if not (state.detaching or state.abort_error is not None) or state.task is None:
                raise
            state.task.uncancel()
            return None
        finally:
            state.reading = False

    async def _handle(self, state: StreamState, req: pb.ProcessingRequest) -> list[pb.ProcessingResponse]:
        kind = req.WhichOneof("request")
        if req.HasField("protocol_config"):
            state.modes = BodyModes.of(req.protocol_config)
        if state.subset is None and self.director.subset_filter:
            state.subset = subset_hint(req)
        if kind == "request_headers":
            return await self._on_request_headers(state, req.request_headers)
        if kind == "request_body":
            return await self._on_request_body(state, req.request_body)
        if kind == "request_trailers":
            return await self._on_request_trailers(state)
        if kind == "response_headers":
            return [self._on_response_headers(state, req)]
        if kind == "response_body":
            return self._on_response_body(state, req.response_body)
        if kind == "response_trailers":
            state.finished = True
            out = flush_response_body(state, end_of_stream=False)
            return [*out, pb.ProcessingResponse(response_trailers=pb.TrailersResponse())]
        return []

    def _context(self, state: StreamState) -> RequestContext:
        if state.ctx is None:  # request headers skipped (request_header_mode: SKIP)
            state.ctx = self.director.new_context(state.headers)
            state.ctx.subset = state.subset
            state.ctx.abort = functools.partial(self._abort, state)
        return state.ctx

    def _abort(self, state: StreamState, err: GatewayError) -> None:
        """End a routed request from outside its stream (gateway preemption): Envoy gets an
        immediate response, a local reply if the response has not started, else a reset."""
        if state.finished or state.abort_error is not None:
            return
        state.abort_error = err
        if state.reading and state.task is not None:
            state.task.cancel()

    async def _on_request_headers(
        self, state: StreamState, msg: pb.HttpHeaders
    ) -> list[pb.ProcessingResponse]:
        state.headers = headers_of(msg)
        if state.route_pool:
            state.headers[POOL_HEADER] = state.route_pool
        ctx = self._context(state)
        if msg.end_of_stream and is_models_listing(state.headers):
            return await self._list_models(state, ctx.request_id)
        if msg.end_of_stream or state.modes.route_on_headers:
            # Body-less requests (GET /v1/models), or a body Envoy will not show before routing.
            return self._routed(state, self._decide_without_body(state), header_phase=True)
        if state.modes.defer_request_headers:
            return []
        state.headers_answered = True
        return [messages.continue_headers()]

    async def _list_models(self, state: StreamState, request_id: str) -> list[pb.ProcessingResponse]:
        pool = state.headers.get(POOL_HEADER)
        body = await models_body(self.director.store, {pool} if pool else None)
        state.routed = state.finished = True
        log.info("request %s GET /v1/models answered by the gateway", request_id)
        return [messages.immediate_json(200, body, "epp.models")]

    def _decide_without_body(self, state: StreamState) -> RoutingDecision | GatewayError:
        try:
            return self.director.route_without_body(self._context(state))
        except GatewayError as err:
            return err

    async def _on_request_body(self, state: StreamState, msg: pb.HttpBody) -> list[pb.ProcessingResponse]:
        if state.routed:  # the rest of a body routed from its headers or its first buffer
            if state.modes.request == FULL_DUPLEX:
                return messages.streamed_request_body(msg.body, msg.end_of_stream)
            return [messages.continue_request_body()]
        state.body += msg.body
        state.body_chunks += 1
        limit = self.director.max_body_bytes
        if len(state.body) > limit:
            # Not `finished`: Envoy may still be streaming the body; it closes the stream itself.
            err = GatewayError(413, f"request body exceeds the {limit} byte limit", "body_too_large")
            return [messages.immediate_error(err)]
        if not msg.end_of_stream:
            if state.modes.request == BUFFERED_PARTIAL:  # over Envoy's buffer: the rest never comes
                decision = self._decide_without_body(state)
                return self._routed(state, decision, header_phase=not state.headers_answered)
            if state.modes.request == FULL_DUPLEX or not state.headers_answered:
                return []
            return [messages.continue_request_body()]
        return await self._route(state, end_of_stream=True)

    async def _on_request_trailers(self, state: StreamState) -> list[pb.ProcessingResponse]:
        out = [] if state.routed else await self._route(state, end_of_stream=False)
        if state.finished:
            return out
        return [*out, pb.ProcessingResponse(request_trailers=pb.TrailersResponse())]

    async def _route(self, state: StreamState, end_of_stream: bool) -> list[pb.ProcessingResponse]:
        ctx = self._context(state)
        try:
            decision: RoutingDecision | GatewayError = await self.director.route(ctx, bytes(state.body))
        except GatewayError as err:
            decision = err
        return self._routed(state, decision, header_phase=not state.headers_answered, eos=end_of_stream)

    def _routed(
        self,
        state: StreamState,
        decision: RoutingDecision | GatewayError,
        header_phase: bool,
        eos: bool = True,
    ) -> list[pb.ProcessingResponse]:
        """The answers that hand Envoy the decision, in the order Envoy expects them."""
        state.routed = True
        if isinstance(decision, GatewayError):
            rid = state.ctx.request_id if state.ctx else "?"
            log.info("request %s rejected: %d %s", rid, decision.status, decision.message)
            state.finished = True
            return [messages.immediate_error(decision)]
        ctx = state.ctx
        if ctx is not None and ctx.resolution is not None:
            state.rewriter = rewriter_for(ctx.resolution.target_model, ctx.resolution.model)
        headers = dict(decision.headers)
        body = decision.body if decision.body is not None else bytes(state.body)
        if decision.body is not None:
            headers["content-length"] = str(len(body))
        meta = messages.metadata_struct(self._observed(state, headers, decision.metadata))
        if not header_phase:  # BUFFERED: the route rides on the body answer
            resp = messages.buffered_request_body(headers, decision.body, decision.remove_headers)
            resp.dynamic_metadata.CopyFrom(meta)
            return [resp]
        first = messages.continue_headers(headers, clear_route_cache=True, remove=decision.remove_headers)
        first.dynamic_metadata.CopyFrom(meta)
        state.headers_answered = True
        if state.body_chunks == 0:
            return [first]
        chunks, state.body_chunks = state.body_chunks, 0
        if state.modes.request == FULL_DUPLEX:
            return [first, *messages.streamed_request_body(body, eos)]
        if decision.body is None:  # STREAMED/BUFFERED, body sent first: pass each chunk on
            return [first, *(messages.continue_request_body() for _ in range(chunks))]
        rest = [messages.replaced_body("request_body", b"") for _ in range(chunks - 1)]
        return [first, messages.replaced_body("request_body", body), *rest]

    def _observed(
        self, state: StreamState, headers: dict[str, str], metadata: dict[str, Any]
    ) -> dict[str, Any]:
        """Routed, with the response observed elsewhere: hand the context over. Envoy adds the
        response headers decided now from metadata (no response phase here). A response whose
        model name must be rewritten, or whose plugins add response headers (session affinity,
        the conformance verifier), asks Envoy for a response stream (RESPONSE_PHASES_HEADER)."""
        ctx = state.ctx
        if not state.observed or ctx is None or state.headers_answered:
            return metadata
        state.handed_over = True
        plugin_headers = ctx.decision is not None and ctx.decision.runtime.adds_response_headers
        if state.rewriter is not None or plugin_headers:
            headers[RESPONSE_PHASES_HEADER] = RESPONSE_PHASES_SEND
            self.observer.expect(ctx, responding=True, peer=state.peer)
            return metadata
        self.observer.expect(ctx, peer=state.peer)
        if ctx.explanation and ctx.headers.get(EXPLAIN_RESPONSE_HEADER):
            return {**metadata, RESPONSE_METADATA: {"explain": ctx.explanation}}
        return metadata

    def _on_response_headers(self, state: StreamState, req: pb.ProcessingRequest) -> pb.ProcessingResponse:
        msg = req.response_headers
        state.finished = msg.end_of_stream
        state.response_started = True
        response_headers = headers_of(msg)
        state.sse = "text/event-stream" in response_headers.get("content-type", "")
        ctx = state.ctx
        if ctx is None or ctx.picked is None:
            return messages.continue_response_headers({})
        status = int(response_headers.get(":status", "0") or 0)
        served = served_address(req) or ctx.picked.address
        self.director.on_response_headers(ctx, status, served)
        headers = {SERVED_HEADER: served}
        headers.update(ctx.response_headers)
        if ctx.explanation and ctx.headers.get("x-gateway-explain"):
            headers[EXPLAIN_RESPONSE_HEADER] = ctx.explanation
        return messages.continue_response_headers(headers)

    def _on_response_body(self, state: StreamState, body: pb.HttpBody) -> list[pb.ProcessingResponse]:
        if state.ctx is not None:
            self.director.on_response_body(state.ctx, body.body, body.end_of_stream)
        answers = answer_response_body(state, body)
        if body.end_of_stream and state.ctx is not None and state.ctx.response_metadata:
            # Plugins' metadata (request-attribute-reporter) rides on the last body answer.
            answers = answers or [messages.continue_response_body()]
            answers[-1].dynamic_metadata.CopyFrom(messages.metadata_struct(state.ctx.response_metadata))
        return answers


async def _prepend(
    first: pb.ProcessingRequest, rest: AsyncIterator[pb.ProcessingRequest]
) -> AsyncIterator[pb.ProcessingRequest]:
    yield first
    async for req in rest:
        yield req


async def serve(
    director: Director,
    host: str,
    port: int,
    credentials: grpc.ServerCredentials | None = None,
    servicer: ExtProcServicer | None = None,
    health_checking: bool = False,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, int]:
    # Envoy may coalesce a fast client's body into chunks far larger than its usual 64 KiB when
    # the ext_proc stream is backed up; the body limit is enforced by counting, not by gRPC.
    max_msg = max(4 * director.max_body_bytes, 64 * 1024 * 1024)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_msg),
            ("grpc.max_send_message_length", max_msg),
            # A port already in use is an error, not a silent share, except between the workers
            # of one EPP (--workers), which the kernel spreads connections over.
            ("grpc.so_reuseport", int(reuse_port)),
        ]
    )
    servicer = servicer or ExtProcServicer(director)
    pb_grpc.add_ExternalProcessorServicer_to_server(servicer, server)
    # Envoy's access log (response phases "access-log") reports responses on the same port.
    servicer.access_log = add_access_log_service(server, servicer.observer)
    if health_checking:  # upstream's --health-checking: grpc.health.v1 on the ext_proc port too
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc

        checks = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(checks, server)
        await checks.set(
            pb.DESCRIPTOR.services_by_name["ExternalProcessor"].full_name,
            health_pb2.HealthCheckResponse.SERVING,
        )
    address = f"{host}:{port}"
    bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    await server.start()
    return server, bound
