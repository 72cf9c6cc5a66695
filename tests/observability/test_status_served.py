"""status.json shows each server's own model list (the adapter inventory), None until read."""

from __future__ import annotations

from inference_gateway.metrics.inventory import SERVED_MODELS, parse_model_list
from inference_gateway.observability.status import _endpoint
from tests.scheduling.sched_helpers import endpoint


def test_status_lists_served_models_once_read() -> None:
    e = endpoint("vllm-0")
    assert _endpoint(e)["served"] is None  # not read yet: unknown, not "serves nothing"
    models = b'{"data": [{"id": "base", "parent": null}, {"id": "lora-a", "parent": "base"}]}'
    e.attributes[SERVED_MODELS] = parse_model_list(models, now=0.0)
    assert _endpoint(e)["served"] == ["base", "lora-a"]
