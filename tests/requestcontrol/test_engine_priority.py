"""engine-priority: the director writes the request's priority into the body for engines that
schedule by priority (vLLM --scheduling-policy priority: lower runs first)."""

from __future__ import annotations

import random

import orjson
import pytest

from inference_gateway.requestcontrol.director import Director
from inference_gateway.requestcontrol.resolve import OBJECTIVE_HEADER, ModelResolver
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.plugins.engine_priority import EnginePriority
from tests.requestcontrol.fleet import MODELS, make_store

CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: engine-priority
  parameters: {PARAMS}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: queue-scorer}]
"""


def _director(params: str | None) -> Director:
    store = make_store(MODELS)
    config = load_config(None) if params is None else load_config(CONFIG.replace("{PARAMS}", params))
    return Director(
        store, PoolRuntime(config, flow_control=False), resolver=ModelResolver(store, random.Random(1))
    )


async def _sent(director: Director, body: dict[str, object], headers: dict[str, str] | None = None) -> dict:
    ctx = director.new_context(headers or {})
    decision = await director.route(ctx, orjson.dumps(body))
    director.on_complete(ctx)
    return orjson.loads(decision.body) if decision.body is not None else body


async def test_priority_is_the_negated_gateway_priority() -> None:
    director = _director("{}")
    assert (await _sent(director, {"model": "food-review", "prompt": "x"}))["priority"] == -1  # Critical
    assert (await _sent(director, {"model": "summaries", "prompt": "x"}))["priority"] == 1  # Sheddable
    objective = {OBJECTIVE_HEADER: "interactive"}  # InferenceObjective priority 10
    assert (await _sent(director, {"model": "summaries", "prompt": "x"}, objective))["priority"] == -10


async def test_off_unless_configured() -> None:
    director = _director(None)  # the default config has no engine-priority plugin
    sent = await _sent(director, {"model": "food-review", "prompt": "x"})
    assert "priority" not in sent


async def test_client_priority_is_kept_unless_override_is_configured() -> None:
    kept = await _sent(_director("{}"), {"model": "summaries", "prompt": "x", "priority": 7})
    assert kept["priority"] == 7
    overridden = await _sent(
        _director("{overrideClientPriority: true}"), {"model": "summaries", "prompt": "x", "priority": 7}
    )
    assert overridden["priority"] == 1


async def test_criticality_map_and_field_name() -> None:
    director = _director("{field: sched_priority, priorities: {Critical: 0, Standard: 1, Sheddable: 2}}")
    assert (await _sent(director, {"model": "food-review", "prompt": "x"}))["sched_priority"] == 0
    assert (await _sent(director, {"model": "summaries", "prompt": "x"}))["sched_priority"] == 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"priorities": {"Urgent": 0}}, "unknown criticality"),
        ({"priorities": {"Critical": "high"}}, "must be an integer"),
        ({"priorities": [1]}, "must map"),
        ({"overrideClientPriority": "yes"}, "true or false"),
        ({"field": ""}, "must not be empty"),
        ({"feild": "priority"}, "unknown parameter"),
    ],
)
def test_bad_parameters_name_the_problem(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EnginePriority("p", params)
