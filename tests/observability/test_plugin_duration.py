"""Every filter, scorer and picker call lands in inference_extension_plugin_duration_seconds."""

from __future__ import annotations

import orjson

from inference_gateway.epp import EndpointPicker, EPPOptions
from tests.helpers import make_store


async def test_each_plugin_call_is_timed_by_extension_point_and_name() -> None:
    epp = EndpointPicker(EPPOptions(metrics_port=None, health_port=None), store=make_store())
    for _ in range(3):
        ctx = epp.director.new_context({})
        await epp.director.route(ctx, orjson.dumps({"model": "base-model", "prompt": "hello"}))
        epp.director.on_complete(ctx)
    counts = {
        (s.labels["extension_point"], s.labels["plugin_name"]): s.value
        for family in epp.registry.collect()
        if family.name == "inference_extension_plugin_duration_seconds"
        for s in family.samples
        if s.name.endswith("_count")
    }
    for scorer in ("queue-scorer", "kv-cache-utilization-scorer", "prefix-cache-scorer"):
        assert counts[("Scorer", scorer)] == 3
    assert counts[("Picker", "round-robin-picker")] == 3
