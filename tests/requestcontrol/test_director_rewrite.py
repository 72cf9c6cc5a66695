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


async def test_unknown_model_is_refused_with_404() -> None:
    director = _director()
    for endpoint in director.store.endpoints():
        endpoint.metrics.updated_at = 1.0
    with pytest.raises(GatewayError) as info:
        await director.route(director.new_context({}), _body("nope"))
    assert info.value.status == 404
