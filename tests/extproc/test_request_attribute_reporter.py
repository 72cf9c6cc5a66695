"""request-attribute-reporter: a CEL value over the response's usage goes back to Envoy as
dynamic metadata on the last response-body answer, over real gRPC, in the body modes Envoy
streams responses in (upstream's reference config: FULL_DUPLEX_STREAMED; ours: STREAMED)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2 as mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.scheduling.config import ConfigError, load_config
from inference_gateway.scheduling.plugins.request_attribute_reporter import RequestAttributeReporter
from tests.extproc.grpc_client import extproc_client
from tests.extproc.test_extproc_protocol import exchange, headers_msg
from tests.extproc.test_processing_modes import BODY, body_msgs, config, response_msgs

Mode = mode_pb2.ProcessingMode
KEY = "x-gateway-inference-request-cost"
# gie/testdata-request-attribute-reporter-config.yaml's plugin, with upstream's README expression.
CONFIG = f"""
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- name: total-tokens-cost-reporter
  type: request-attribute-reporter
  parameters:
    attributes:
    - key: {{namespace: envoy.lb, name: {KEY}}}
      expression: usage.prompt_tokens + usage.completion_tokens
      condition: "has(usage.prompt_tokens) && has(usage.completion_tokens)"
"""


@pytest.fixture
async def client() -> AsyncIterator[pb_grpc.ExternalProcessorStub]:
    async with extproc_client(CONFIG) as stub:
        yield stub


def reported(responses: list[pb.ProcessingResponse]) -> list[float]:
    return [
        r.dynamic_metadata.fields["envoy.lb"].struct_value.fields[KEY].number_value
        for r in responses
        if r.HasField("response_body") and "envoy.lb" in r.dynamic_metadata.fields
    ]


@pytest.mark.parametrize("response_mode", [Mode.FULL_DUPLEX_STREAMED, Mode.STREAMED])
async def test_cost_rides_on_the_last_response_answer(client, response_mode: int) -> None:  # type: ignore[no-untyped-def]
    cfg = config(Mode.FULL_DUPLEX_STREAMED, response_mode)
    head = pb.ProcessingRequest(request_headers=headers_msg(), protocol_config=cfg)
    reply = orjson.dumps({"model": "chat-v1", "usage": {"prompt_tokens": 11, "completion_tokens": 31}})
    pieces = [reply[:20], reply[20:]]
    responses = await exchange(client, [head, *body_msgs(BODY, 64), *response_msgs(pieces)])
    body_answers = [r for r in responses if r.HasField("response_body")]
    assert body_answers and reported(responses) == [42.0]
    assert "envoy.lb" in body_answers[-1].dynamic_metadata.fields  # on the end-of-stream answer

    no_usage = orjson.dumps({"model": "chat-v1", "choices": []})  # zero: nothing is reported
    responses = await exchange(client, [head, *body_msgs(BODY, 64), *response_msgs([no_usage])])
    assert reported(responses) == []


def reporter(expression: str, condition: str = "") -> RequestAttributeReporter:
    attribute = {"key": {"name": "cost"}, "expression": expression, "condition": condition}
    return RequestAttributeReporter(parameters={"attributes": [attribute]})


def test_reporter_follows_upstream_rules() -> None:
    usage = {"prompt_tokens": 3.0, "completion_tokens": 4.5, "total_tokens": 7.5}
    assert reporter("usage.prompt_tokens + usage.completion_tokens").response_metadata(usage) == {
        "envoy.lb": {"cost": 7.0}  # truncated to an integer, default namespace
    }
    assert reporter("usage.total_tokens", "usage.completion_tokens > 5.0").response_metadata(usage) == {}
    assert reporter("usage.prompt_tokens > 1.0").response_metadata(usage) == {}  # not a number
    assert reporter("usage.no_such_field").response_metadata(usage) == {}  # evaluation error: logged
    cached = {**usage, "prompt_token_details": {"cached_tokens": 2.0}}
    assert reporter("usage.prompt_token_details.cached_tokens").response_metadata(cached) == {
        "envoy.lb": {"cost": 2.0}
    }


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ("[]", "exactly one entry"),
        ("[{key: {name: c}, expression: 'usage.+'}]", "failed to compile expression"),
        ("[{key: {name: c}, expression: x, condition: '(('}]", "failed to compile condition"),
        ("[{key: {namespace: ns}, expression: x}]", "attributeKey.name cannot be empty"),
        ("[{key: {name: c}}]", "expression cannot be empty"),
        ("[{key: {name: c}, expresion: x}]", "unknown parameter"),
    ],
)
def test_bad_reporter_configs_fail_at_load(attributes: str, message: str) -> None:
    text = CONFIG.split("    attributes:")[0] + f"    attributes: {attributes}\n"
    with pytest.raises(ConfigError, match=message):
        load_config(text)
