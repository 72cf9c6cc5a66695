"""vllmgrpc-parser (GIE v1.5): requests in vLLM's gRPC API (`vllm.grpc.engine.VllmEngine`,
vLLM's gRPC server entrypoint) instead of OpenAI JSON.

The request body is one gRPC frame (1 byte compressed flag, 4 bytes big-endian length, the
protobuf message). `:path` `/vllm.grpc.engine.VllmEngine/Generate` carries a GenerateRequest
whose `text`, or `tokenized.original_text`, is the prompt scheduling sees (prefix affinity);
`/vllm.grpc.engine.VllmEngine/Embed` an EmbedRequest whose `tokenized.original_text` is. Other
paths, compressed frames, truncated frames and requests without input are 400s, as upstream
refuses them. The body is forwarded untouched; the messages carry no model name, so the
model is `--default-model` or the pool's only model (or `x-gateway-model-name-rewrite`).
Responses are passed on unread: token usage of gRPC responses is not counted (upstream reads
it from GenerateResponse chunks for its metrics). The pool must speak HTTP/2 to its pods:
InferencePool `appProtocol: kubernetes.io/h2c`.

Only the fields read here are declared (vllm_engine.proto at v1.5.0 numbers them so); the
rest of each message is skipped by the protobuf parser.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from inference_gateway.scheduling.params import reject_unknown

GENERATE_PATH = "/vllm.grpc.engine.VllmEngine/Generate"
EMBED_PATH = "/vllm.grpc.engine.VllmEngine/Embed"
FRAME_HEADER = 5
_F = descriptor_pb2.FieldDescriptorProto


def _message_classes() -> dict[str, type[Message]]:
    file = descriptor_pb2.FileDescriptorProto(
        name="inference_gateway/vllm_engine_requests.proto", package="vllm.grpc.engine", syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        proto = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = proto.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name

    one, many = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    tokenized = ".vllm.grpc.engine.TokenizedInput"
    message(
        "TokenizedInput",
        ("original_text", 1, _F.TYPE_STRING, one, ""),
        ("input_ids", 2, _F.TYPE_UINT32, many, ""),
    )
    message(
        "GenerateRequest",
        ("request_id", 1, _F.TYPE_STRING, one, ""),
        ("tokenized", 2, _F.TYPE_MESSAGE, one, tokenized),
        ("text", 3, _F.TYPE_STRING, one, ""),
        ("stream", 5, _F.TYPE_BOOL, one, ""),
    )
    message(
        "EmbedRequest",
        ("request_id", 1, _F.TYPE_STRING, one, ""),
        ("tokenized", 2, _F.TYPE_MESSAGE, one, tokenized),
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"vllm.grpc.engine.{name}"))
        for name in ("GenerateRequest", "EmbedRequest")
    }


MESSAGES = _message_classes()


def grpc_message(frame: bytes) -> bytes:
    """The protobuf message of one gRPC frame; ValueError when it is not a usable frame."""
    if len(frame) < FRAME_HEADER:
        raise ValueError(
            f"invalid gRPC frame: expected at least {FRAME_HEADER} bytes for header, got {len(frame)}"
        )
    if frame[0] == 1:
        raise ValueError("compressed vllmgrpc payload is not supported")
    length = int.from_bytes(frame[1:FRAME_HEADER], "big")
    if len(frame) < FRAME_HEADER + length:
        raise ValueError(
            f"incomplete gRPC payload: header says {length} bytes, {len(frame) - FRAME_HEADER} present"
        )
    return frame[FRAME_HEADER : FRAME_HEADER + length]


def _parse(kind: str, frame: bytes) -> Any:
    message = MESSAGES[kind]()
    try:
        message.ParseFromString(grpc_message(frame))
    except DecodeError as exc:
        raise ValueError(f"not a {kind}: {exc}") from None
    return message


class VllmGRPCParser:
    type_name = "vllmgrpc-parser"
    parses_body = False  # the body is forwarded as it came

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        reject_unknown(parameters or {}, frozenset())
        self.name = name

    def read_body(self, raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """What scheduling reads from the request, OpenAI-shaped: {"prompt", "stream"}."""
        path = headers.get(":path", "")
        if path == GENERATE_PATH:
            generate = _parse("GenerateRequest", raw)
            if generate.HasField("tokenized"):
                return {"prompt": generate.tokenized.original_text, "stream": generate.stream}
            if generate.text:
                return {"prompt": generate.text, "stream": generate.stream}
            raise ValueError("GenerateRequest has neither text nor tokenized input")
        if path == EMBED_PATH:
            embed = _parse("EmbedRequest", raw)
            if not embed.HasField("tokenized"):
                raise ValueError("missing tokenized input in EmbedRequest")
            return {"prompt": embed.tokenized.original_text}
        raise ValueError(f"unsupported gRPC path: {path}")
