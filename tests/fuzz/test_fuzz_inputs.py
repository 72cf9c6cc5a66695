"""Property-based fuzzing: every input gets a well-formed answer and the EPP keeps serving."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import yaml
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference_gateway.api.errors import ManifestError
from inference_gateway.api.manifests import parse_yaml
from inference_gateway.extproc.server import ExtProcServicer
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from tests.helpers import make_store

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
request_bodies = st.one_of(
    st.binary(max_size=300),
    st.fixed_dictionaries(
        {"model": st.one_of(st.sampled_from(["chat", "base-model", "ghost", ""]), json_values)},
        optional={
            "prompt": json_values,
            "messages": json_values,
            "stream": json_values,
            "max_tokens": json_values,
        },
    ).map(lambda d: json.dumps(d).encode()),
    st.text(max_size=200).map(lambda t: t.encode()),
)


def make_servicer() -> ExtProcServicer:
    return ExtProcServicer(
        Director(make_store(), PoolRuntime(load_config(), flow_control=False), max_body_bytes=4096)
    )


async def drive(
    servicer: ExtProcServicer, messages: list[pb.ProcessingRequest]
) -> list[pb.ProcessingResponse]:
    async def gen() -> Any:
        for m in messages:
            yield m

    return [r async for r in servicer.Process(gen(), None)]  # type: ignore[arg-type]


def check_response(resp: pb.ProcessingResponse) -> None:
    kind = resp.WhichOneof("response")
    assert kind is not None
    if kind == "immediate_response":
        code = resp.immediate_response.status.code
        assert 400 <= code < 600
        payload = orjson.loads(resp.immediate_response.body)
        assert set(payload["error"]) == {"message", "type", "code"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=request_bodies, chunk=st.integers(min_value=1, max_value=64))
def test_any_body_gets_routing_or_json_error(body: bytes, chunk: int) -> None:
    servicer = make_servicer()
    msgs = [pb.ProcessingRequest(request_headers=pb.HttpHeaders(headers=base_pb2.HeaderMap()))]
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    msgs += [
        pb.ProcessingRequest(request_body=pb.HttpBody(body=p, end_of_stream=i == len(pieces) - 1))
        for i, p in enumerate(pieces)
    ]
    responses = asyncio.run(drive(servicer, msgs))
    assert responses
    for r in responses:
        check_response(r)
    final = responses[-1]
    assert final.WhichOneof("response") in {"immediate_response", "request_body"}


header_values = st.text(max_size=40).map(
    lambda s: base_pb2.HeaderValue(key="x-gateway-inference-objective", raw_value=s.encode())
)
processing_messages = st.one_of(
    st.builds(
        lambda h: pb.ProcessingRequest(
            request_headers=pb.HttpHeaders(headers=base_pb2.HeaderMap(headers=[h]))
        ),
        header_values,
    ),
    st.builds(
        lambda b, e: pb.ProcessingRequest(request_body=pb.HttpBody(body=b, end_of_stream=e)),
        st.binary(max_size=64),
        st.booleans(),
    ),
    st.just(pb.ProcessingRequest(request_trailers=pb.HttpTrailers())),
    st.just(pb.ProcessingRequest(response_headers=pb.HttpHeaders())),
    st.builds(lambda b: pb.ProcessingRequest(response_body=pb.HttpBody(body=b)), st.binary(max_size=64)),
    st.just(pb.ProcessingRequest()),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(processing_messages, max_size=8))
def test_any_message_sequence_is_answered_without_crashing(messages: list[pb.ProcessingRequest]) -> None:
    servicer = make_servicer()
    for r in asyncio.run(drive(servicer, messages)):
        check_response(r)
    # Still serving afterwards: a normal request routes.
    ok = [
        pb.ProcessingRequest(request_headers=pb.HttpHeaders(headers=base_pb2.HeaderMap())),
        pb.ProcessingRequest(
            request_body=pb.HttpBody(body=b'{"model":"chat","prompt":"x"}', end_of_stream=True)
        ),
    ]
    last = asyncio.run(drive(servicer, ok))[-1]
    assert last.WhichOneof("response") == "request_body"


crd_docs = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(
            ["inference.networking.k8s.io/v1", "inference.networking.x-k8s.io/v1alpha2", "v1", "bogus/v9"]
        ),
        "kind": st.sampled_from(
            ["InferencePool", "InferenceModel", "InferenceObjective", "InferenceModelRewrite", "Pod"]
        ),
        "metadata": st.one_of(json_values, st.fixed_dictionaries({"name": st.text(max_size=20)})),
        "spec": json_values,
    }
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(crd_docs.map(lambda d: yaml.safe_dump(d)), st.text(max_size=300)))
def test_any_yaml_parses_or_fails_with_manifest_error(text: str) -> None:
    try:
        parse_yaml(text, "fuzz.yaml")
    except ManifestError as err:
        assert str(err).startswith("fuzz.yaml: ")
