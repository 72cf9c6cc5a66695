"""What the ext_proc server knows about one open stream (one HTTP request through Envoy)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from inference_gateway.extproc.modes import FULL_DUPLEX, UPSTREAM_DEFAULT, BodyModes, ModelNameRewriter
from inference_gateway.requestcontrol.director import RequestContext
from inference_gateway.requestcontrol.errors import GatewayError


@dataclass(eq=False)  # identity semantics: states live in a set while their stream is open
class StreamState:
    modes: BodyModes = UPSTREAM_DEFAULT
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    ctx: RequestContext | None = None
    routed: bool = False
    headers_answered: bool = False
    body_chunks: int = 0  # request body messages not yet answered (STREAMED, body first)
    # The pool Envoy routed to, from the route's gRPC initial metadata (multi-pool gateways);
    # it overrides any x-gateway-inference-pool header the client sent.
    route_pool: str | None = None
    # The gRPC peer (Envoy's connection) the stream came on: its access-log stream reports the end.
    peer: str | None = None
    subset: tuple[str, ...] | None = None
    rewriter: ModelNameRewriter | None = None
    sse: bool = False  # the model server streams (text/event-stream): pass chunks on at once
    response_body: bytearray = field(default_factory=bytearray)
    # The response is reported elsewhere (EnvoyConfig.response_phases "access-log" or "observe"):
    # once routed, the context is handed to the ResponseObserver, which completes it.
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
    # Set when the request is ended from outside (gateway preemption): answered at once.
    abort_error: GatewayError | None = None

    response_started: bool = False

    @property
    def decided(self) -> bool:
        """Envoy holds the routing decision: the rest of the stream can go on without the EPP.

        Not while a full-duplex response streams: chunks in flight to the EPP would be lost."""
        return self.routed and not (self.response_started and self.modes.response == FULL_DUPLEX)
