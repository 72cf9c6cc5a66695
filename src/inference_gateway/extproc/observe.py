"""The response, seen off the critical path: the contexts routing streams hand over.

With `EnvoyConfig.response_phases` "access-log" or "observe" the routing ext_proc filter
handles the request only. The routing stream hands its RequestContext over when it sends the
decision (`expect`); what reports the response claims it by x-request-id:
- "access-log": Envoy's gRPC access-log entry, once the request ended (`ended`,
  extproc/access_log.py);
- "observe": a second filter in Envoy's observability mode streams the request headers,
  response headers and every response chunk to the EPP without waiting for answers
  (`observe`); its end is the request's end.
Either way a client that went away ends it too, so the in-flight ledger cannot leak.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from envoy.service.ext_proc.v3 import external_processor_pb2 as pb

from inference_gateway.extproc.connections import GatewayConnections
from inference_gateway.requestcontrol.director import REQUEST_ID_HEADER, Director, RequestContext

EXT_PROC_ATTRIBUTES = "envoy.filters.http.ext_proc"


def header_value(msg: pb.HttpHeaders, name: str) -> str | None:
    for h in msg.headers.headers:
        if h.key == name:
            return h.raw_value.decode("utf-8", "replace") if h.raw_value else h.value
    return None


def response_status(msg: pb.HttpHeaders) -> int:
    value = header_value(msg, ":status")
    return int(value) if value and value.isdigit() else 0


def _attribute(req: pb.ProcessingRequest, name: str) -> str | None:
    attrs = req.attributes.get(EXT_PROC_ATTRIBUTES)
    if attrs is not None and name in attrs.fields:
        return attrs.fields[name].string_value or None
    return None


def upstream_address(req: pb.ProcessingRequest) -> str | None:
    return _attribute(req, "upstream.address")


def request_id_attribute(req: pb.ProcessingRequest) -> str | None:
    return _attribute(req, "request.id")


@dataclass
class ResponseObserver:
    director: Director
    # A context never claimed (its observer stream never came) is completed after this long:
    # longer than any request may last (Envoy's route timeout), so only a lost stream trips it.
    max_age_s: float = 900.0
    sweep_every_s: float = 30.0
    _pending: dict[str, list[RequestContext]] = field(default_factory=dict)
    # Contexts whose response goes through the EPP after all (model name rewrite): claimed by
    # the response stream Envoy opens for them.
    _responding: dict[str, list[RequestContext]] = field(default_factory=dict)
    _last_sweep: float = field(default_factory=time.monotonic)
    # Request ids whose end was reported (access log) before any context was handed over for
    # them: a routing stream whose client left while it was deciding may still hand one over
    # after. Bounded, and only briefly remembered; Envoy's request ids are unique.
    _ended_early: OrderedDict[str, float] = field(default_factory=OrderedDict)
    max_ended_early: int = 4096
    ended_early_s: float = 5.0
    # How long a gateway connection may go without an access-log stream before its requests end.
    peer_grace_s: float = 2.0
    connections: GatewayConnections = field(init=False)

    def __post_init__(self) -> None:
        self.connections = GatewayConnections(self._end_lost, self.peer_grace_s)

    @property
    def pending(self) -> int:
        return sum(len(v) for table in (self._pending, self._responding) for v in table.values())

    def expect(self, ctx: RequestContext, responding: bool = False, peer: str | None = None) -> None:
        """The routing stream (on gRPC connection `peer`) is done with `ctx`: its response will
        arrive on an observer stream (or, `responding`, on a response stream)."""
        now = time.monotonic()
        if self._ended_early and self._ended_early.pop(ctx.request_id, None) is not None:
            self.director.on_complete(ctx)  # its access-log entry came first: it is over
            return
        table = self._responding if responding else self._pending
        table.setdefault(ctx.request_id, []).append(ctx)
        self.connections.routed(ctx, peer)
        if now - self._last_sweep > self.sweep_every_s:
            self._sweep(now)

    def claim(self, request_id: str | None, responding: bool = False) -> RequestContext | None:
        table = self._responding if responding else self._pending
        waiting = table.get(request_id) if request_id else None
        if not waiting:
            return None
        ctx = waiting.pop(0)
        if not waiting:
            del table[ctx.request_id]
        self.connections.forget(ctx)
        return ctx

    def _end_lost(self, ctx: RequestContext) -> None:
        """`ctx`'s gateway connection is gone: no report of its end will come."""
        self._drop(ctx)
        self.director.on_complete(ctx)

    def _drop(self, ctx: RequestContext) -> None:
        """Forget a handed-over context that no report will claim."""
        for table in (self._pending, self._responding):
            waiting = table.get(ctx.request_id)
            if waiting and any(c is ctx for c in waiting):
                waiting[:] = [c for c in waiting if c is not ctx]
                if not waiting:
                    del table[ctx.request_id]
        self.connections.forget(ctx)

    def ended(self, request_id: str) -> RequestContext | None:
        """The request's HTTP stream is over (its access-log entry came): its context, if one
        was handed over (a response stream that never came included), for completing."""
        ctx = self.claim(request_id) or self.claim(request_id, responding=True)
        if ctx is None and request_id:
            now = time.monotonic()
            early = self._ended_early
            early[request_id] = now
            while len(early) > self.max_ended_early or now - next(iter(early.values())) > self.ended_early_s:
                early.popitem(last=False)
        return ctx

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        for table in (self._pending, self._responding):
            for waiting in list(table.values()):
                for ctx in [c for c in waiting if now - c.started > self.max_age_s]:
                    self._end_lost(ctx)

    async def observe(self, requests: AsyncIterator[pb.ProcessingRequest]) -> None:
        """Consume one observer stream; Envoy ignores answers in observability mode, so none are sent."""
        request_id: str | None = None
        ctx: RequestContext | None = None
        try:
            async for req in requests:
                kind = req.WhichOneof("request")
                if kind == "response_body":
                    if ctx is not None:
                        body = req.response_body
                        self.director.on_response_body(ctx, body.body, body.end_of_stream)
                        if body.end_of_stream:
                            return
                elif kind == "request_headers":
                    request_id = header_value(req.request_headers, REQUEST_ID_HEADER)
                elif kind == "response_headers":
                    # Claimed here, not at the request headers: with a BUFFERED body (FailOpen) the
                    # observer's stream can open before the routing stream has decided.
                    ctx = self.claim(request_id)
                    if ctx is not None:
                        msg = req.response_headers
                        served = upstream_address(req)
                        self.director.on_response_headers(ctx, response_status(msg), served)
                        if msg.end_of_stream:
                            return
        finally:
            # A response stream that never came (client gone first) leaves its context here too.
            ctx = ctx or self.claim(request_id) or self.claim(request_id, responding=True)
            if ctx is not None:
                self.director.on_complete(ctx)
