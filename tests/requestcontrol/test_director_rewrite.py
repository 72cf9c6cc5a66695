"""The body the model server receives: the director rewrites `model` to the chosen target."""

from __future__ import annotations

import logging
import random

import orjson
import pytest

from inference_gateway.requestcontrol.director import Director
from inference_gateway.requestcontrol.errors import GatewayError
from inference_gateway.requestcontrol.resolve import REWRITE_HEADER, ModelResolver
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from tests.helpers import make_store as single_pool_store
from tests.requestcontrol.fleet import MODELS, make_store


def _director(seed: int = 1) -> Director:
    store = make_store(MODELS)
    return Director(
        store,
        PoolRuntime(load_config(), flow_control=False),
        resolver=ModelResolver(store, random.Random(seed)),
    )


def _body(model: str) -> bytes:
    return orjson.dumps({"model": model, "prompt": "Hello", "max_tokens": 5, "stream": True})


async def test_body_reaching_the_server_names_the_target_model(caplog: pytest.LogCaptureFixture) -> None:
    director = _director()
    caplog.set_level(logging.INFO, logger="inference_gateway.requestcontrol.director")
    ctx = director.new_context({"x-request-id": "r1"})
    decision = await director.route(ctx, _body("food-review"))
    assert decision.body is not None
    sent = orjson.loads(decision.body)
    assert sent["model"] in {"food-review-v1", "food-review-v2", "food-review-v3"}
    assert {k: sent[k] for k in ("prompt", "max_tokens", "stream")} == {
        "prompt": "Hello",
        "max_tokens": 5,
        "stream": True,
    }
    assert decision.destination.split(",")[0] in {e.address for e in director.store.endpoints()}
    assert "criticality=Critical" in caplog.text
    assert f"target={sent['model']}" in caplog.text


async def test_every_target_is_reached_over_many_requests() -> None:
    director = _director(seed=3)
    seen = set()
    for i in range(200):
        ctx = director.new_context({"x-request-id": f"r{i}"})
        decision = await director.route(ctx, _body("food-review"))
        seen.add(orjson.loads(decision.body or b"{}")["model"])
        director.on_complete(ctx)
    assert seen == {"food-review-v1", "food-review-v2", "food-review-v3"}


async def test_rewrite_header_is_honoured() -> None:
    director = _director()
    ctx = director.new_context({REWRITE_HEADER: "food-review-hotfix"})
    decision = await director.route(ctx, _body("food-review"))
    assert orjson.loads(decision.body or b"{}")["model"] == "food-review-hotfix"


async def test_unsplit_model_body_passes_unchanged() -> None:
    director = _director()
    for endpoint in director.store.endpoints():
        endpoint.metrics.served_models = frozenset({"base"})
        endpoint.metrics.updated_at = 1.0
    decision = await director.route(director.new_context({}), _body("base"))
    assert decision.body is None  # Envoy forwards the original bytes


async def test_unknown_model_is_forwarded_with_default_priority() -> None:
    """As upstream: an adapter no InferenceModel names goes to the pool; the server decides."""
    director = _director()
    for endpoint in director.store.endpoints():
        endpoint.metrics.updated_at = 1.0
    ctx = director.new_context({})
    decision = await director.route(ctx, _body("runtime-adapter"))
    assert decision.body is None
    assert ctx.resolution is not None and ctx.resolution.priority == 0
    assert ctx.resolution.target_model == "runtime-adapter"


async def test_strict_models_refuses_unknown_model_with_404() -> None:
    store = make_store(MODELS)
    for endpoint in store.endpoints():
        endpoint.metrics.updated_at = 1.0
    director = Director(
        store,
        PoolRuntime(load_config(), flow_control=False),
        resolver=ModelResolver(store, strict_models=True),
    )
    with pytest.raises(GatewayError) as info:
        await director.route(director.new_context({}), _body("nope"))
    assert info.value.status == 404 and info.value.code == "model_not_found"


def _no_model_body() -> bytes:
    return orjson.dumps({"prompt": "Hello", "max_tokens": 5})


async def test_request_without_model_gets_the_pools_single_served_model() -> None:
    director = _director()
    for endpoint in director.store.endpoints():
        endpoint.metrics.served_models = frozenset({"base"})
    ctx = director.new_context({})
    decision = await director.route(ctx, _no_model_body())
    assert orjson.loads(decision.body or b"{}")["model"] == "base"
    assert ctx.resolution is not None and ctx.resolution.model == "base"


async def test_request_without_model_uses_the_configured_default() -> None:
    store = make_store(MODELS)
    resolver = ModelResolver(store, random.Random(1), default_model="food-review")
    director = Director(store, PoolRuntime(load_config(), flow_control=False), resolver=resolver)
    for endpoint in store.endpoints():
        endpoint.metrics.served_models = frozenset({"a", "b"})
    decision = await director.route(director.new_context({}), _no_model_body())
    assert orjson.loads(decision.body or b"{}")["model"].startswith("food-review-v")


async def test_request_without_model_is_400_when_the_pool_serves_several() -> None:
    director = _director()
    for endpoint in director.store.endpoints():
        endpoint.metrics.served_models = frozenset({"a", "b"})
    with pytest.raises(GatewayError) as info:
        await director.route(director.new_context({}), _no_model_body())
    assert info.value.status == 400 and info.value.code == "missing_model"


async def test_passthrough_parser_forwards_any_body_untouched() -> None:
    config = load_config(
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"
        "plugins:\n- type: passthrough-parser\nparser: {pluginRef: passthrough-parser}\n"
    )
    store = single_pool_store()
    director = Director(store, PoolRuntime(config, flow_control=False))
    raw = b"\x00\x01 a protobuf or any other payload"
    decision = await director.route(director.new_context({}), raw)
    assert decision.body is None  # not rewritten: the server gets the bytes the client sent
    assert decision.destination.split(",")[0] in {e.address for e in store.endpoints()}
    openai = Director(store, PoolRuntime(load_config(), flow_control=False))
    with pytest.raises(GatewayError) as caught:
        await openai.route(openai.new_context({}), raw)
    assert caught.value.status == 400
