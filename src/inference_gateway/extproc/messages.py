"""Builders for ext_proc ProcessingResponse messages."""

from __future__ import annotations

from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.type.v3 import http_status_pb2
from google.protobuf import struct_pb2

from inference_gateway.requestcontrol.errors import GatewayError

OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
STREAM_CHUNK = 64 * 1024


def header_mutation(headers: dict[str, str], remove: tuple[str, ...] = ()) -> pb.HeaderMutation:
    return pb.HeaderMutation(
        set_headers=[
            base_pb2.HeaderValueOption(
                header=base_pb2.HeaderValue(key=k, raw_value=v.encode()), append_action=OVERWRITE
            )
            for k, v in headers.items()
        ],
        remove_headers=list(remove),
    )


def metadata_struct(metadata: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(metadata)
    return s


def continue_headers(
    headers: dict[str, str] | None = None, clear_route_cache: bool = False, remove: tuple[str, ...] = ()
) -> pb.ProcessingResponse:
    common = pb.CommonResponse(clear_route_cache=clear_route_cache)
    if headers or remove:
        common.header_mutation.CopyFrom(header_mutation(headers or {}, remove))
    return pb.ProcessingResponse(request_headers=pb.HeadersResponse(response=common))


def continue_response_headers(headers: dict[str, str]) -> pb.ProcessingResponse:
    common = pb.CommonResponse()
    if headers:
        common.header_mutation.CopyFrom(header_mutation(headers))
    return pb.ProcessingResponse(response_headers=pb.HeadersResponse(response=common))


def continue_request_body() -> pb.ProcessingResponse:
    return pb.ProcessingResponse(request_body=pb.BodyResponse(response=pb.CommonResponse()))


def continue_response_body() -> pb.ProcessingResponse:
    return pb.ProcessingResponse(response_body=pb.BodyResponse(response=pb.CommonResponse()))


def replaced_body(phase: str, body: bytes) -> pb.ProcessingResponse:
    """BUFFERED/STREAMED modes: this message's body (or chunk) becomes `body`."""
    mutation = pb.BodyMutation(body=body) if body else pb.BodyMutation(clear_body=True)
    common = pb.CommonResponse(body_mutation=mutation)
    return pb.ProcessingResponse(**{phase: pb.BodyResponse(response=common)})


def streamed_body(phase: str, body: bytes, end_of_stream: bool = True) -> list[pb.ProcessingResponse]:
    """FULL_DUPLEX_STREAMED mode: hand the (possibly rewritten) body back in chunks."""
    chunks = [body[i : i + STREAM_CHUNK] for i in range(0, len(body), STREAM_CHUNK)] or [b""]
    out = []
    for i, chunk in enumerate(chunks):
        last = end_of_stream and i == len(chunks) - 1
        mutation = pb.BodyMutation(streamed_response=pb.StreamedBodyResponse(body=chunk, end_of_stream=last))
        common = pb.CommonResponse(body_mutation=mutation)
        out.append(pb.ProcessingResponse(**{phase: pb.BodyResponse(response=common)}))
    return out


def streamed_request_body(body: bytes, end_of_stream: bool = True) -> list[pb.ProcessingResponse]:
    return streamed_body("request_body", body, end_of_stream)


def buffered_request_body(
    headers: dict[str, str], body: bytes | None, remove: tuple[str, ...] = ()
) -> pb.ProcessingResponse:
    """Buffered mode: routing headers and an optional body rewrite ride on the body response."""
    common = pb.CommonResponse(clear_route_cache=True, header_mutation=header_mutation(headers, remove))
    if body is not None:
        common.body_mutation.CopyFrom(pb.BodyMutation(body=body))
    return pb.ProcessingResponse(request_body=pb.BodyResponse(response=common))


def immediate_error(err: GatewayError) -> pb.ProcessingResponse:
    headers = {"content-type": "application/json", **err.headers}
    return pb.ProcessingResponse(
        immediate_response=pb.ImmediateResponse(
            status=http_status_pb2.HttpStatus(code=err.status),  # type: ignore[arg-type]
            headers=header_mutation(headers),
            body=err.body(),
            # The prefix tells Envoy's local-reply mapper this body is already OpenAI JSON.
            details=f"epp.{err.code}",
        ),
    )


def immediate_json(status: int, body: bytes, details: str = "epp.ok") -> pb.ProcessingResponse:
    """A complete answer from the EPP itself (e.g. the gateway's model list)."""
    return pb.ProcessingResponse(
        immediate_response=pb.ImmediateResponse(
            status=http_status_pb2.HttpStatus(code=status),  # type: ignore[arg-type]
            headers=header_mutation({"content-type": "application/json"}),
            body=body,
            details=details,
        ),
    )
