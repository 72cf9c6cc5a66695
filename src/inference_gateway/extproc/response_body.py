"""Answers to response body chunks, per response body mode: pass on, rewrite the model name
back to the client's (streamed SSE lines or the whole JSON body), or hold a FULL_DUPLEX body
until it is complete."""

from __future__ import annotations

from envoy.service.ext_proc.v3 import external_processor_pb2 as pb

from inference_gateway.extproc import messages
from inference_gateway.extproc.modes import FULL_DUPLEX, NONE, STREAMED
from inference_gateway.extproc.state import StreamState


def answer_response_body(state: StreamState, body: pb.HttpBody) -> list[pb.ProcessingResponse]:
    if body.end_of_stream:
        state.finished = True
    mode, rewriter = state.modes.response, state.rewriter
    if mode == FULL_DUPLEX:
        if state.sse or rewriter is None:  # pass on at once, rewriting whole lines
            data = rewriter.feed(body.body, body.end_of_stream) if rewriter else body.body
            return messages.streamed_body("response_body", data, body.end_of_stream)
        state.response_body += body.body
        return flush_response_body(state, True) if body.end_of_stream else []
    if rewriter is not None and mode != NONE:
        streamed = mode == STREAMED
        data = rewriter.feed(body.body, body.end_of_stream) if streamed else rewriter.rewrite(body.body)
        if data != body.body:
            return [messages.replaced_body("response_body", data)]
    if body.end_of_stream:
        # No reply: closing the stream (see Process) lets Envoy pass the last chunk on
        # unchanged, and a close alone cannot race Envoy's reset of the stream.
        return []
    return [messages.continue_response_body()]


def flush_response_body(state: StreamState, end_of_stream: bool) -> list[pb.ProcessingResponse]:
    """FULL_DUPLEX, non-streamed response: the whole body goes back once complete."""
    if state.modes.response != FULL_DUPLEX or (not state.response_body and not end_of_stream):
        return []
    data = bytes(state.response_body)
    state.response_body.clear()
    if state.rewriter is not None:
        data = state.rewriter.rewrite(data)
    return messages.streamed_body("response_body", data, end_of_stream)
