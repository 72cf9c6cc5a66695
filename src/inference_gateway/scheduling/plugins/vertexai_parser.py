"""vertexai-parser (llm-d): Vertex AI's gRPC `PredictionService/ChatCompletions`, whose request
wraps an OpenAI chat-completions JSON body in a `google.api.HttpBody`.

A request whose `:path` ends in `PredictionService/ChatCompletions` is one gRPC frame holding a
ChatCompletionsRequest (`endpoint` = 1, `http_body` = 2; HttpBody `content_type` = 1, `data` =
2); the JSON in `http_body.data` is read as the openai-parser reads a chat body (model,
messages, stream) and the frame is forwarded untouched. Any other path is not an inference
request: it goes to a random ready endpoint without scheduling, as llm-d skips it. A frame
that cannot be read, or a ChatCompletionsRequest without an HttpBody or JSON object, is a 400.
Responses are passed on unread (llm-d reads their usage for its metrics). The pool must speak
HTTP/2 to its pods: InferencePool `appProtocol: kubernetes.io/h2c`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from inference_gateway.scheduling.params import reject_unknown
from inference_gateway.scheduling.plugins.vllmgrpc_parser import grpc_message

CHAT_COMPLETIONS_METHOD = "PredictionService/ChatCompletions"
_F = descriptor_pb2.FieldDescriptorProto


def _chat_completions_request() -> type[Message]:
    file = descriptor_pb2.FileDescriptorProto(
        name="inference_gateway/vertexai_chat_completions.proto",
        package="google.cloud.aiplatform",
        syntax="proto3",
    )
    body = file.message_type.add(name="HttpBody")
    body.field.add(name="content_type", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    body.field.add(name="data", number=2, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
    request = file.message_type.add(name="ChatCompletionsRequest")
    request.field.add(name="endpoint", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    request.field.add(
        name="http_body",
        number=2,
        type=_F.TYPE_MESSAGE,
        label=_F.LABEL_OPTIONAL,
        type_name=".google.cloud.aiplatform.HttpBody",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("google.cloud.aiplatform.ChatCompletionsRequest")
    )


ChatCompletionsRequest = _chat_completions_request()


class VertexAIParser:
    type_name = "vertexai-parser"
    parses_body = False  # the frame is forwarded as it came

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        reject_unknown(parameters or {}, frozenset())
        self.name = name

    def read_body(self, raw: bytes, headers: Mapping[str, str]) -> dict[str, Any] | None:
        """The wrapped chat body; None for a request that is not a chat completion (skipped)."""
        if not headers.get(":path", "").endswith(CHAT_COMPLETIONS_METHOD):
            return None
        request: Any = ChatCompletionsRequest()
        try:
            request.ParseFromString(grpc_message(raw))
        except DecodeError as exc:
            raise ValueError(f"unmarshaling ChatCompletionsRequest: {exc}") from None
        if not request.HasField("http_body"):
            raise ValueError("ChatCompletionsRequest has no HttpBody")
        try:
            body = orjson.loads(request.http_body.data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"parsing ChatCompletionsRequest: body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ValueError("parsing ChatCompletionsRequest: body is not a JSON object")
        return body
