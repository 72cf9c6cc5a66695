"""Every body mode Envoy may be configured with, for requests and responses, over real gRPC.

Each test plays Envoy's side of one mode and checks the answers Envoy requires in that mode:
where the route rides, one answer per body message where Envoy waits for one, and the client's
model name back in the response body.
"""

from __future__ import annotations

import orjson
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2 as mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from google.protobuf import struct_pb2

from tests.extproc.test_extproc_protocol import exchange, headers_msg, set_headers

Mode = mode_pb2.ProcessingMode
DEST = "x-gateway-destination-endpoint"
BODY = orjson.dumps({"model": "chat", "prompt": "hello there", "max_tokens": 3})


def config(request: int, response: int = Mode.NONE, early: bool = False) -> pb.ProtocolConfiguration:
    return pb.ProtocolConfiguration(
        request_body_mode=request,
        response_body_mode=response,
        send_body_without_waiting_for_header_response=early,
    )


def body_msgs(body: bytes, chunk: int) -> list[pb.ProcessingRequest]:
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    return [
        pb.ProcessingRequest(request_body=pb.HttpBody(body=p, end_of_stream=i == len(pieces) - 1))
        for i, p in enumerate(pieces)
    ]


def response_msgs(chunks: list[bytes], content_type: str = "application/json") -> list[pb.ProcessingRequest]:
    hs = [(":status", "200"), ("content-type", content_type)]
    headers = base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in hs])
    out = [pb.ProcessingRequest(response_headers=pb.HttpHeaders(headers=headers))]
    out += [
        pb.ProcessingRequest(response_body=pb.HttpBody(body=c, end_of_stream=i == len(chunks) - 1))
        for i, c in enumerate(chunks)
    ]
    return out


def kinds(responses: list[pb.ProcessingResponse]) -> list[str]:
    return [str(r.WhichOneof("response")) for r in responses]


async def test_body_mode_none_routes_on_the_headers(stub) -> None:  # type: ignore[no-untyped-def]
    client, director = stub
    msgs = [pb.ProcessingRequest(request_headers=headers_msg(), protocol_config=config(Mode.NONE))]
    responses = await exchange(client, msgs)
    assert kinds(responses) == ["request_headers"]
    assert set_headers(responses[0], "request_headers")[DEST] in {
        e.address for e in director.store.endpoints()
    }


async def test_streamed_routes_on_headers_and_answers_each_chunk(stub) -> None:  # type: ignore[no-untyped-def]
    client, _ = stub
    msgs = [pb.ProcessingRequest(request_headers=headers_msg(), protocol_config=config(Mode.STREAMED))]
    msgs += body_msgs(BODY, 10)
    responses = await exchange(client, msgs)
    assert kinds(responses) == ["request_headers"] + ["request_body"] * len(body_msgs(BODY, 10))
    assert DEST in set_headers(responses[0], "request_headers")


@pytest.mark.parametrize("mode", [Mode.STREAMED, Mode.BUFFERED])
async def test_body_before_headers_answer_routes_on_the_body(stub, mode: int) -> None:  # type: ignore[no-untyped-def]
    client, _ = stub
    chunk = 10 if mode == Mode.STREAMED else len(BODY)
    msgs = [pb.ProcessingRequest(request_headers=headers_msg(), protocol_config=config(mode, early=True))]
    msgs += body_msgs(BODY, chunk)
    responses = await exchange(client, msgs)
    n = len(body_msgs(BODY, chunk))
    assert kinds(responses) == ["request_headers"] + ["request_body"] * n
    headers = set_headers(responses[0], "request_headers")
    assert DEST in headers and responses[0].request_headers.response.clear_route_cache
    sent = b"".join(r.request_body.response.body_mutation.body for r in responses[1:])
    assert orjson.loads(sent)["model"] in {"chat-v1", "chat-v2"}
    assert int(headers["content-length"]) == len(sent)


async def test_buffered_partial_routes_without_the_rest_of_the_body(stub) -> None:  # type: ignore[no-untyped-def]
    client, _ = stub
    msgs = [
        pb.ProcessingRequest(request_headers=headers_msg(), protocol_config=config(Mode.BUFFERED_PARTIAL))
    ]
    msgs.append(pb.ProcessingRequest(request_body=pb.HttpBody(body=BODY[:10], end_of_stream=False)))
    responses = await exchange(client, msgs)
    assert kinds(responses) == ["request_headers", "request_body"]
    assert DEST in set_headers(responses[1], "request_body")


async def test_skipped_request_headers_still_route(stub) -> None:  # type: ignore[no-untyped-def]
    client, _ = stub
    first, *rest = body_msgs(BODY, 16)
    first.protocol_config.CopyFrom(config(Mode.FULL_DUPLEX_STREAMED))
    responses = await exchange(client, [first, *rest])
    assert kinds(responses)[0] == "request_headers" and DEST in set_headers(responses[0], "request_headers")


async def test_subset_hint_narrows_and_an_empty_subset_is_503(stub) -> None:  # type: ignore[no-untyped-def]
    client, _ = stub

    def hinted(subset: list[str]) -> list[pb.ProcessingRequest]:
        meta = base_pb2.Metadata()
        hint = struct_pb2.Struct()
        hint.update({"x-gateway-destination-endpoint-subset": subset})
        meta.filter_metadata["envoy.lb.subset_hint"].CopyFrom(hint)
        head = pb.ProcessingRequest(request_headers=headers_msg(), metadata_context=meta)
        return [head, *body_msgs(BODY, 64)]

    for _ in range(5):
        responses = await exchange(client, hinted(["10.0.0.2:8000"]))
        assert set_headers(responses[0], "request_headers")[DEST] == "10.0.0.2:8000"
        listed = responses[0].dynamic_metadata.fields["envoy.lb"].struct_value.fields[DEST].string_value
        assert listed == "10.0.0.2:8000"
    responses = await exchange(client, hinted([]))
    assert responses[-1].immediate_response.status.code == 503
    assert orjson.loads(responses[-1].immediate_response.body)["error"]["code"] == "no_endpoints_in_subset"


TARGET = "chat-v9"  # pinned by x-gateway-model-name-rewrite, so every exchange sends the same


def _request(mode_cfg: pb.ProtocolConfiguration | None) -> list[pb.ProcessingRequest]:
    head = pb.ProcessingRequest(request_headers=headers_msg({"x-gateway-model-name-rewrite": TARGET}))
    if mode_cfg is not None:
        head.protocol_config.CopyFrom(mode_cfg)
    return [head, *body_msgs(BODY, 64)]


def _target(responses: list[pb.ProcessingResponse]) -> str:
    body = b"".join(
        r.request_body.response.body_mutation.streamed_response.body
        or r.request_body.response.body_mutation.body
        for r in responses
        if r.HasField("request_body")
    )
    return str(orjson.loads(body)["model"])


def _response_bytes(responses: list[pb.ProcessingResponse]) -> bytes:
    out = b""
    for r in responses:
        if r.HasField("response_body"):
            m = r.response_body.response.body_mutation
            out += m.streamed_response.body if m.HasField("streamed_response") else m.body
    return out


@pytest.mark.parametrize("cfg", [None, config(Mode.FULL_DUPLEX_STREAMED, Mode.FULL_DUPLEX_STREAMED)])
async def test_full_duplex_response_comes_back_with_the_requested_model(stub, cfg) -> None:  # type: ignore[no-untyped-def]
    """No protocol_config (older Envoy) means FULL_DUPLEX_STREAMED both ways, as upstream assumes."""
    client, _ = stub
    target = _target(await exchange(client, _request(cfg)))
    assert target == TARGET
    reply = orjson.dumps({"id": "x", "model": target, "choices": [{"text": "ok"}]})
    pieces = [reply[:9], reply[9:20], reply[20:]]  # the name split across chunks
    responses = await exchange(client, [*_request(cfg), *response_msgs(pieces)])
    back = [r for r in responses if r.HasField("response_body")]
    assert back and back[-1].response_body.response.body_mutation.streamed_response.end_of_stream
    assert orjson.loads(_response_bytes(responses))["model"] == "chat"


async def test_full_duplex_sse_is_passed_on_per_chunk_and_rewritten(stub) -> None:  # type: ignore[no-untyped-def]
    client, _ = stub
    cfg = config(Mode.FULL_DUPLEX_STREAMED, Mode.FULL_DUPLEX_STREAMED)
    target = _target(await exchange(client, _request(cfg)))
    events = [b'data: {"model": "' + target.encode() + b'", "choices": []}\n\n' for _ in range(3)] + [
        b"data: [DONE]\n\n"
    ]
    stream = b"".join(events)
    chunks = [stream[i : i + 13] for i in range(0, len(stream), 13)]
    responses = await exchange(client, [*_request(cfg), *response_msgs(chunks, "text/event-stream")])
    body_answers = [r for r in responses if r.HasField("response_body")]
    assert len(body_answers) == len(chunks)  # one answer per chunk: nothing waits for the end
    text = _response_bytes(responses)
    assert text.count(b'"model": "chat"') == 3 and target.encode() not in text


@pytest.mark.parametrize("mode", [Mode.STREAMED, Mode.BUFFERED])
async def test_streamed_and_buffered_responses_are_rewritten(stub, mode: int) -> None:  # type: ignore[no-untyped-def]
    client, _ = stub
    cfg = config(Mode.BUFFERED, mode)
    target = _target_buffered(await exchange(client, _request(cfg)))
    reply = orjson.dumps({"model": target, "choices": []})
    chunks = [reply[:12], reply[12:]] if mode == Mode.STREAMED else [reply]
    responses = await exchange(client, [*_request(cfg), *response_msgs(chunks)])
    assert orjson.loads(_response_bytes(responses))["model"] == "chat"


def _target_buffered(responses: list[pb.ProcessingResponse]) -> str:
    return str(orjson.loads(responses[-1].request_body.response.body_mutation.body)["model"])
