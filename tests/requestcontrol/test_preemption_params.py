"""sheddable-preemption parameters."""

from __future__ import annotations

import pytest

from inference_gateway.requestcontrol.preemption import SheddablePreemption


def test_defaults_and_thresholds() -> None:
    plugin = SheddablePreemption("p", {"queueDepthThreshold": 2, "retryAfterSeconds": 3})
    assert plugin.detector.config.queue_depth_threshold == 2
    assert plugin.error().headers == {"retry-after": "3"} and plugin.error().status == 503
    assert SheddablePreemption("p", {}).retry_after_s == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"retryAfterSeconds": -1}, ">= 0"),
        ({"queueDepthThreshold": 0}, ">= 1"),
        ({"maxVictims": 2}, "unknown"),
    ],
)
def test_bad_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SheddablePreemption("p", params)
