"""vllmgrpc-parser: vLLM gRPC requests are routed from the frame's prompt and forwarded
byte for byte, over real gRPC ext_proc; unreadable frames are 400s."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.scheduling.plugins.vllmgrpc_parser import (
    EMBED_PATH,
    GENERATE_PATH,
    MESSAGES,
    VllmGRPCParser,
)
from tests.extproc import grpc_client
from tests.extproc.grpc_client import extproc_client
from tests.extproc.test_extproc_protocol import exchange, set_headers

DEST = "x-gateway-destination-endpoint"
CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- {name: vllmgrpcParser, type: vllmgrpc-parser}
- type: prefix-cache-scorer
schedulingProfiles:
- name: default
  plugins: [{pluginRef: prefix-cache-scorer}]
parser: {pluginRef: vllmgrpcParser}
"""


def frame(message: object, compressed: bool = False) -> bytes:
    payload = message.SerializeToString()  # type: ignore[attr-defined]
    return bytes([int(compressed)]) + len(payload).to_bytes(4, "big") + payload


def generate(text: str) -> bytes:
    return frame(MESSAGES["GenerateRequest"](request_id="r", text=text, stream=True))


@pytest.fixture
async def client() -> AsyncIterator[pb_grpc.ExternalProcessorStub]:
    async with extproc_client(CONFIG) as stub:
        yield stub


def grpc_request(body: bytes, path: str = GENERATE_PATH) -> list[pb.ProcessingRequest]:
    return grpc_client.grpc_request(body, path)


async def test_generate_requests_route_on_their_prompt_and_pass_untouched(client) -> None:  # type: ignore[no-untyped-def]
    shared = "a long shared system prompt for every request " * 20
    body = generate(shared + "question one")
    responses = await exchange(client, grpc_request(body))
    first = set_headers(responses[0], "request_headers")[DEST]
    sent = b"".join(r.request_body.response.body_mutation.streamed_response.body for r in responses[1:])
    assert sent == body  # the gRPC frame is forwarded byte for byte
    for i in range(5):  # the prompt, read from the frame, drives prefix affinity
        responses = await exchange(client, grpc_request(generate(shared + f"question {i}")))
        assert set_headers(responses[0], "request_headers")[DEST] == first


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (b"\x00\x00", GENERATE_PATH, "invalid gRPC frame"),
        (b"\x00\x00\x00\x00\x09abc", GENERATE_PATH, "incomplete gRPC payload"),
        (frame(MESSAGES["GenerateRequest"](text="x"), compressed=True), GENERATE_PATH, "compressed"),
        (frame(MESSAGES["GenerateRequest"](request_id="r")), GENERATE_PATH, "neither text nor tokenized"),
        (generate("x"), "/vllm.grpc.engine.VllmEngine/Abort", "unsupported gRPC path"),
    ],
)
async def test_unreadable_requests_are_400(client, body: bytes, path: str, message: str) -> None:  # type: ignore[no-untyped-def]
    responses = await exchange(client, grpc_request(body, path))
    answer = responses[-1].immediate_response
    assert answer.status.code == 400
    assert message in orjson.loads(answer.body)["error"]["message"]


def test_tokenized_and_embed_inputs_give_their_original_text() -> None:
    parser = VllmGRPCParser()
    tokenized = MESSAGES["GenerateRequest"](tokenized={"original_text": "hi there", "input_ids": [1, 2]})
    assert parser.read_body(frame(tokenized), {":path": GENERATE_PATH}) == {
        "prompt": "hi there",
        "stream": False,
    }
    embed = MESSAGES["EmbedRequest"](request_id="e", tokenized={"original_text": "embed me"})
    assert parser.read_body(frame(embed), {":path": EMBED_PATH}) == {"prompt": "embed me"}
    with pytest.raises(ValueError, match="missing tokenized input"):
        parser.read_body(frame(MESSAGES["EmbedRequest"](request_id="e")), {":path": EMBED_PATH})
