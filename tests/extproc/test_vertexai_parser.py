"""vertexai-parser: Vertex AI gRPC ChatCompletions frames are scheduled from the OpenAI chat
body they wrap and forwarded untouched; other methods go to a random endpoint; unreadable
frames are 400s. Over real gRPC ext_proc."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import orjson
import pytest
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2 as mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.extproc.server import serve
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.plugins.vertexai_parser import ChatCompletionsRequest
from tests.extproc.test_extproc_protocol import exchange, headers_msg, set_headers
from tests.extproc.test_processing_modes import body_msgs, config
from tests.helpers import make_store

Mode = mode_pb2.ProcessingMode
DEST = "x-gateway-destination-endpoint"
CHAT = "/google.cloud.aiplatform.v1beta1.PredictionService/ChatCompletions"
CONFIG = """
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: vertexai-parser
- type: prefix-cache-scorer
schedulingProfiles:
- name: default
  plugins: [{pluginRef: prefix-cache-scorer}]
parser: {pluginRef: vertexai-parser}
"""


def frame(data: bytes | None) -> bytes:
    request = ChatCompletionsRequest(endpoint="projects/p/locations/l/endpoints/e")  # type: ignore[call-arg]
    if data is not None:
        request.http_body.content_type = "application/json"  # type: ignore[attr-defined]
        request.http_body.data = data  # type: ignore[attr-defined]
    payload = request.SerializeToString()
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def chat(text: str) -> bytes:
    return frame(orjson.dumps({"model": "base-model", "messages": [{"role": "user", "content": text}]}))


@pytest.fixture
async def client() -> AsyncIterator[pb_grpc.ExternalProcessorStub]:
    director = Director(make_store(), PoolRuntime(load_config(CONFIG), flow_control=False))
    server, port = await serve(director, "127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield pb_grpc.ExternalProcessorStub(channel)
    finally:
        await channel.close()
        await server.stop(0)


def grpc_request(body: bytes, path: str = CHAT) -> list[pb.ProcessingRequest]:
    head = pb.ProcessingRequest(
        request_headers=headers_msg({":path": path, "content-type": "application/grpc"}),
        protocol_config=config(Mode.FULL_DUPLEX_STREAMED),
    )
    return [head, *body_msgs(body, 16)]


async def test_chat_frames_route_on_the_wrapped_chat_and_pass_untouched(client) -> None:  # type: ignore[no-untyped-def]
    shared = "you are a careful assistant answering billing questions " * 20
    body = chat(shared + "first")
    responses = await exchange(client, grpc_request(body))
    first = set_headers(responses[0], "request_headers")[DEST]
    assert (
        b"".join(r.request_body.response.body_mutation.streamed_response.body for r in responses[1:]) == body
    )
    for i in range(5):  # the wrapped messages drive prefix affinity
        responses = await exchange(client, grpc_request(chat(shared + f"question {i}")))
        assert set_headers(responses[0], "request_headers")[DEST] == first


async def test_other_methods_go_to_some_endpoint_unscheduled(client) -> None:  # type: ignore[no-untyped-def]
    path = "/google.cloud.aiplatform.v1beta1.PredictionService/Predict"
    responses = await exchange(client, grpc_request(b"\x00\x00\x00\x00\x00", path))
    assert set_headers(responses[0], "request_headers")[DEST].endswith(":8000")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x00\x00", "invalid gRPC frame"),
        (frame(None), "has no HttpBody"),
        (frame(b"not json"), "body is not JSON"),
        (frame(b"[1, 2]"), "not a JSON object"),
    ],
)
async def test_unreadable_chat_frames_are_400(client, body: bytes, message: str) -> None:  # type: ignore[no-untyped-def]
    responses = await exchange(client, grpc_request(body))
    answer = responses[-1].immediate_response
    assert answer.status.code == 400 and message in orjson.loads(answer.body)["error"]["message"]
