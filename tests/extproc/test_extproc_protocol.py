"""The ext_proc gRPC protocol, driven by a real gRPC client the way Envoy drives it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2 as mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

MODES = {
    "duplex": mode_pb2.ProcessingMode.FULL_DUPLEX_STREAMED,
    "buffered": mode_pb2.ProcessingMode.BUFFERED,
}


def headers_msg(extra: dict[str, str] | None = None, end_of_stream: bool = False) -> pb.HttpHeaders:
    hs = {":method": "POST", ":path": "/v1/completions", "content-type": "application/json", **(extra or {})}
    return pb.HttpHeaders(
        headers=base_pb2.HeaderMap(
            headers=[base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in hs.items()]
        ),
        end_of_stream=end_of_stream,
    )


def request_stream(
    mode: str, body: bytes, chunk: int = 7, headers: dict[str, str] | None = None
) -> list[pb.ProcessingRequest]:
    config = pb.ProtocolConfiguration(request_body_mode=MODES[mode])
    msgs = [pb.ProcessingRequest(request_headers=headers_msg(headers), protocol_config=config)]
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    for i, piece in enumerate(pieces):
        msgs.append(
            pb.ProcessingRequest(request_body=pb.HttpBody(body=piece, end_of_stream=i == len(pieces) - 1))
        )
    return msgs


async def exchange(
    stub: pb_grpc.ExternalProcessorStub, msgs: list[pb.ProcessingRequest]
) -> list[pb.ProcessingResponse]:
    async def gen() -> AsyncIterator[pb.ProcessingRequest]:
        for m in msgs:
            yield m

    return [r async for r in stub.Process(gen())]


def set_headers(resp: pb.ProcessingResponse, field: str) -> dict[str, str]:
    common = getattr(resp, field).response
    return {h.header.key: h.header.raw_value.decode() for h in common.header_mutation.set_headers}


@pytest.mark.parametrize("mode", ["duplex", "buffered"])
async def test_routes_and_rewrites_model(stub, mode: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = stub
    body = orjson.dumps({"model": "chat", "prompt": "hello there"})
    responses = await exchange(client, request_stream(mode, body))
    if mode == "duplex":
        kinds = [r.WhichOneof("response") for r in responses]
        assert kinds[0] == "request_headers" and set(kinds[1:]) == {"request_body"}
        headers = set_headers(responses[0], "request_headers")
        assert responses[0].request_headers.response.clear_route_cache
        new_body = b"".join(
            r.request_body.response.body_mutation.streamed_response.body for r in responses[1:]
        )
        assert responses[-1].request_body.response.body_mutation.streamed_response.end_of_stream
    else:
        # Buffered: one answer to the headers (continue), the routing rides on the body answer.
        # Each body chunk before the last is answered with a plain continue.
        assert responses[0].WhichOneof("response") == "request_headers"
        last = responses[-1]
        headers = set_headers(last, "request_body")
        new_body = last.request_body.response.body_mutation.body
    # The header holds the primary alone (ORIGINAL_DST clusters parse one address); the
    # metadata holds the ordered list, primary first, for override_host and its retries.
    primary = headers["x-gateway-destination-endpoint"]
    assert primary.startswith("10.0.0.") and "," not in primary
    assert orjson.loads(new_body)["model"] in {"chat-v1", "chat-v2"}
    assert int(headers["content-length"]) == len(new_body)
    meta = responses[0 if mode == "duplex" else -1].dynamic_metadata
    listed = meta.fields["envoy.lb"].struct_value.fields["x-gateway-destination-endpoint"].string_value
    ordered = listed.split(",")
    assert ordered[0] == primary and len(ordered) == len(set(ordered)) >= 2


@pytest.mark.parametrize("mode", ["duplex", "buffered"])
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{nope", 400, "invalid_json"),
        (b'{"model": 7}', 400, "invalid_model"),
        (b"x" * 2000, 413, "body_too_large"),
    ],
)
async def test_errors_are_immediate_json(stub, mode: str, body: bytes, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = stub
    responses = await exchange(client, request_stream(mode, body, chunk=600))
    immediate = responses[-1].immediate_response
    assert immediate.status.code == status
    payload = orjson.loads(immediate.body)
    assert payload["error"]["code"] == code
    assert payload["error"]["type"] and payload["error"]["message"]
    ctype = {h.header.key: h.header.raw_value for h in immediate.headers.set_headers}["content-type"]
    assert ctype == b"application/json"


async def test_bodyless_request_is_routed_and_response_reports_served(stub) -> None:  # type: ignore[no-untyped-def]
    client, director = stub
    msgs = [pb.ProcessingRequest(request_headers=headers_msg({":method": "GET"}, end_of_stream=True))]
    responses = await exchange(client, msgs)
    assert [r.WhichOneof("response") for r in responses] == ["request_headers"]
    # Body-less requests (GET /v1/models) get an endpoint too, as upstream: ORIGINAL_DST needs one.
    routed = set_headers(responses[0], "request_headers")["x-gateway-destination-endpoint"]
    assert routed in {e.address for e in director.store.endpoints()}

    body = orjson.dumps({"model": "base-model", "prompt": "p"})
    stream = request_stream("duplex", body, headers={"x-gateway-explain": "true"})
    served_status = base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key=":status", raw_value=b"200")])
    stream.append(pb.ProcessingRequest(response_headers=pb.HttpHeaders(headers=served_status)))
    responses = await exchange(client, stream)
    response_headers = set_headers(responses[-1], "response_headers")
    picked = set_headers(responses[0], "request_headers")["x-gateway-destination-endpoint"].split(",")[0]
    assert response_headers["x-gateway-destination-endpoint-served"] == picked
    explain = orjson.loads(response_headers["x-gateway-explain"])
    assert explain["profiles"]["default"]["picked"][0] == picked
    # The stream ended, so the request no longer counts as in flight.
    assert all(e.in_flight == 0 for e in director.store.endpoints())
