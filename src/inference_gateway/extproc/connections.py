"""Which Envoy connection each handed-over request was routed on, so a gateway that goes away
does not leave its requests in the in-flight ledger.

With the access log reporting ends, a request's end travels in a batch on the access-log
stream of the Envoy worker thread that routed it, over the same gRPC connection (gRPC peer) as
its routing stream. An Envoy that exits or crashes sends no entries for the requests it still
had open (nor for the last flush interval's ended ones). When the last access-log stream of a
peer ends and none reopens within `grace_s` (Envoy reopens a stream it merely reset at its next
flush), the requests routed on that peer are ended. A peer whose access-log stream never opened
(an Envoy gone before its first flush) is left to the observer's max-age sweep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from inference_gateway.requestcontrol.director import RequestContext


@dataclass
class GatewayConnections:
    # Called for each request of a peer that is gone; it must forget and complete the context.
    end: Callable[[RequestContext], None]
    grace_s: float = 2.0
    _routed: dict[str, dict[int, RequestContext]] = field(default_factory=dict)  # peer -> id(ctx)
    _peer_of: dict[int, str] = field(default_factory=dict)
    _log_streams: dict[str, int] = field(default_factory=dict)  # open access-log streams per peer
    _checks: dict[str, asyncio.TimerHandle] = field(default_factory=dict)

    def routed(self, ctx: RequestContext, peer: str | None) -> None:
        if peer:
            self._routed.setdefault(peer, {})[id(ctx)] = ctx
            self._peer_of[id(ctx)] = peer

    def forget(self, ctx: RequestContext) -> None:
        peer = self._peer_of.pop(id(ctx), None)
        if peer is not None and (routed := self._routed.get(peer)) is not None:
            routed.pop(id(ctx), None)
            if not routed:
                del self._routed[peer]

    def in_flight(self, peer: str) -> int:
        return len(self._routed.get(peer, ()))

    def log_stream_opened(self, peer: str) -> None:
        self._log_streams[peer] = self._log_streams.get(peer, 0) + 1
        if (check := self._checks.pop(peer, None)) is not None:
            check.cancel()

    def log_stream_closed(self, peer: str) -> None:
        left = self._log_streams.get(peer, 1) - 1
        if left > 0:
            self._log_streams[peer] = left
            return
        self._log_streams.pop(peer, None)
        if peer not in self._checks:
            self._checks[peer] = asyncio.get_running_loop().call_later(self.grace_s, self._gone, peer)

    def _gone(self, peer: str) -> None:
        self._checks.pop(peer, None)
        if self._log_streams.get(peer):
            return
        for ctx in list(self._routed.pop(peer, {}).values()):
            self._peer_of.pop(id(ctx), None)
            self.end(ctx)
