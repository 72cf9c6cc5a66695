"""vertexai-parser: Vertex AI gRPC ChatCompletions frames are scheduled from the OpenAI chat
body they wrap and forwarded untouched; other methods go to a random endpoint; unreadable
frames are 400s. Over real gRPC ext_proc."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.scheduling.plugins.vertexai_parser import ChatCompletionsRequest
from tests.extproc import grpc_client
from tests.extproc.grpc_client import extproc_client
from tests.extproc.test_extproc_protocol import exchange, set_headers

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
    async with extproc_client(CONFIG) as stub:
        yield stub


def grpc_request(body: bytes, path: str = CHAT) -> list[pb.ProcessingRequest]:
    return grpc_client.grpc_request(body, path)


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
