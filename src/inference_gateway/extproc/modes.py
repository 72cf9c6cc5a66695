"""How Envoy was configured to send each request phase, and the response model-name rewrite.

Envoy (1.33+) tells the processor its body modes in the first message's `protocol_config`.
Older Envoys send nothing; then the EPP assumes FULL_DUPLEX_STREAMED for both bodies, which is
what upstream's EPP assumes unconditionally and what upstream's reference Envoy config sets.
"""

from __future__ import annotations

from dataclasses import dataclass

from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb

_Mode = processing_mode_pb2.ProcessingMode
NONE = _Mode.NONE
STREAMED = _Mode.STREAMED
BUFFERED = _Mode.BUFFERED
BUFFERED_PARTIAL = _Mode.BUFFERED_PARTIAL
FULL_DUPLEX = _Mode.FULL_DUPLEX_STREAMED


@dataclass(frozen=True, slots=True)
class BodyModes:
    request: int = FULL_DUPLEX
    response: int = FULL_DUPLEX
    # STREAMED/BUFFERED with send_body_without_waiting_for_header_response: body chunks arrive
    # before the headers are answered, so routing can wait for the body.
    body_before_headers_answer: bool = False

    @classmethod
    def of(cls, config: pb.ProtocolConfiguration) -> BodyModes:
        return cls(
            config.request_body_mode,
            config.response_body_mode,
            config.send_body_without_waiting_for_header_response,
        )

    @property
    def defer_request_headers(self) -> bool:
        """Whether the headers answer (which carries the route) waits for the whole body."""
        if self.request == FULL_DUPLEX:
            return True
        return self.request in (STREAMED, BUFFERED, BUFFERED_PARTIAL) and self.body_before_headers_answer

    @property
    def route_on_headers(self) -> bool:
        """No way to see the body before Envoy picks the upstream: route from headers alone."""
        return self.request == NONE or (self.request == STREAMED and not self.body_before_headers_answer)


UPSTREAM_DEFAULT = BodyModes()


class ModelNameRewriter:
    """Puts the client's model name back into response bytes where the server wrote the target's.

    Matches upstream: only the literal `"model":"<target>"` (with or without one space after the
    colon) is replaced. Streamed (SSE) bodies are rewritten line by line; an incomplete last line
    waits for the next chunk so a name split across chunks is still found.
    """

    def __init__(self, target: str, incoming: str) -> None:
        self._pairs = [
            (f'"model":"{target}"'.encode(), f'"model":"{incoming}"'.encode()),
            (f'"model": "{target}"'.encode(), f'"model": "{incoming}"'.encode()),
        ]
        self._tail = b""

    def rewrite(self, data: bytes) -> bytes:
        for old, new in self._pairs:
            data = data.replace(old, new)
        return data

    def feed(self, chunk: bytes, end_of_stream: bool) -> bytes:
        """A streamed chunk in, the rewritten bytes that may go out now."""
        data = self._tail + chunk
        if end_of_stream:
            self._tail = b""
            return self.rewrite(data)
        cut = data.rfind(b"\n") + 1
        self._tail = data[cut:]
        return self.rewrite(data[:cut])


def rewriter_for(target: str | None, incoming: str | None) -> ModelNameRewriter | None:
    if not target or not incoming or target == incoming:
        return None
    return ModelNameRewriter(target, incoming)
