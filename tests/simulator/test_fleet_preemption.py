"""Gateway preemption in the virtual fleet: the director's own rule, at virtual time."""

from __future__ import annotations

from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet import run_fleet
from inference_gateway.simulator.fleet_types import SimRequest
from inference_gateway.simulator.gateway import VirtualGateway, seeded_config

CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: sheddable-preemption
  parameters: {queueDepthThreshold: 1}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: queue-scorer}]
"""


def _run(config: str) -> tuple[dict[object, str], VirtualGateway]:
    scheduler = VirtualGateway(seeded_config(config, 1))
    requests = [
        SimRequest("old", 0.0, 64, 400, priority=-1),
        SimRequest("young", 0.01, 64, 400, priority=-1),
        SimRequest("critical", 0.5, 64, 5, priority=1),
    ]
    result = run_fleet(requests, [ServerConfig(max_num_seqs=1)], scheduler)
    return {r.request_id: r.status for r in result.results}, scheduler


def test_critical_arrival_preempts_the_youngest_sheddable_on_a_saturated_pod() -> None:
    statuses, scheduler = _run(CONFIG)
    assert statuses == {"old": "ok", "young": "preempted", "critical": "ok"}
    assert scheduler.preempted == 1


def test_without_the_plugin_nothing_is_preempted() -> None:
    statuses, scheduler = _run(
        CONFIG.replace("- type: sheddable-preemption\n  parameters: {queueDepthThreshold: 1}\n", "")
    )
    assert set(statuses.values()) == {"ok"} and scheduler.preempted == 0
