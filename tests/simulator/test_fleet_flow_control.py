"""Flow control in virtual time: a saturated pool holds requests in the gateway's queue and
dispatches each as a pod frees up, instead of committing it to one engine's FCFS queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from inference_gateway.scheduling.config import load_config
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet import Fleet
from inference_gateway.simulator.fleet_types import HELD, EndpointSnapshot, SimRequest
from inference_gateway.simulator.gateway import VirtualGateway, seeded_config
from inference_gateway.simulator.virtual_loop import VirtualLoop

SCORERS = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: utilization-detector
  parameters: {queueDepthThreshold: 1, kvCacheUtilThreshold: 0.95}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer}
"""
GATED = SCORERS + "featureGates: [flowControl]\nflowControl: {defaultRequestTTL: 0}\n"


class Recorder:
    """Wraps the gateway: what `pick` answered, the order held requests were dispatched in,
    and the deepest engine waiting queue any scrape showed."""

    def __init__(self, gateway: VirtualGateway) -> None:
        self.gateway = gateway
        self.answers: list[int | None] = []
        self.dispatched: list[int | str] = []
        self.max_waiting = 0

    def pick(self, request: SimRequest, snapshots: Sequence[EndpointSnapshot]) -> int | None:
        self._seen(snapshots)
        answer = self.gateway.pick(request, snapshots)
        self.answers.append(answer)
        return answer

    def on_finished(self, result: object) -> None:
        self.gateway.on_finished(result)  # type: ignore[arg-type]

    @property
    def holding(self) -> int:
        return self.gateway.holding

    def bind_dispatch(self, dispatch: Callable[[SimRequest, int | None], None]) -> None:
        def recorded(request: SimRequest, index: int | None) -> None:
            self.dispatched.append(request.request_id)
            dispatch(request, index)

        self.gateway.bind_dispatch(recorded)

    def advance(self, now: float, snapshots: Sequence[EndpointSnapshot]) -> float | None:
        self._seen(snapshots)
        return self.gateway.advance(now, snapshots)

    def _seen(self, snapshots: Sequence[EndpointSnapshot]) -> None:
        self.max_waiting = max(self.max_waiting, *(s.waiting_queue for s in snapshots))


def burst(n: int) -> list[SimRequest]:
    """n requests within 0.1 s: far more than two small servers run at once."""
    return [SimRequest(i, i * 0.1 / n, 64, 40) for i in range(n)]


def run(config: str, *, holding: bool = True, n: int = 60) -> tuple[Recorder, list[str]]:
    servers = [ServerConfig(name=f"s{i}", max_num_seqs=4) for i in range(2)]
    recorder = Recorder(VirtualGateway(seeded_config(config, 1), holding=holding))
    result = Fleet(servers, recorder, scrape_interval=0.05).run(burst(n))
    statuses = [r.status for r in sorted(result.results, key=lambda r: int(r.request_id))]
    return recorder, statuses


def test_saturated_pool_holds_requests_and_dispatches_them_fcfs_as_pods_free_up() -> None:
    recorder, statuses = run(GATED)
    assert statuses == ["ok"] * 60  # every held request was served, none rejected
    held = [i for i, answer in enumerate(recorder.answers) if answer == HELD]
    assert len(held) > 30  # the burst mostly waited in the gateway, not on an engine
    assert recorder.dispatched == held  # one shared queue, in arrival order
    # The engines' own queues stay short: work is bound to a pod only when it has room.
    assert recorder.max_waiting <= 4
    assert recorder.gateway.holding == 0


def test_without_flow_control_every_request_is_committed_on_arrival() -> None:
    for config, holding in ((SCORERS, True), (GATED, False)):
        recorder, statuses = run(config, holding=holding)
        assert statuses == ["ok"] * 60
        assert HELD not in recorder.answers and not recorder.dispatched
        assert recorder.max_waiting > 10  # the backlog sits in the engines' FCFS queues


def test_a_held_request_past_its_ttl_is_rejected() -> None:
    short_ttl = SCORERS + "featureGates: [flowControl]\nflowControl: {defaultRequestTTL: 100ms}\n"
    recorder, statuses = run(short_ttl)
    assert "rejected" in statuses and "ok" in statuses
    assert recorder.gateway.shed == statuses.count("rejected")


def test_virtual_loop_runs_timers_on_the_virtual_clock() -> None:
    now = [0.0]
    loop = VirtualLoop(lambda: now[0])
    fired: list[float] = []
    loop.call_later(0.5, lambda: fired.append(now[0]))
    loop.run_due()
    assert fired == [] and loop.next_timer() == 0.5

    async def sleeper() -> str:
        await asyncio.sleep(1.0)
        return "woke"

    task = loop.create_task(sleeper())
    now[0] = 0.5
    loop.run_due()
    assert fired == [0.5] and not task.done()
    now[0] = 1.5
    loop.run_due()
    assert task.result() == "woke" and loop.next_timer() is None
    loop.shutdown()


def test_builtin_default_gates_flow_control_with_a_tight_detector() -> None:
    config = load_config()
    assert config.flow_control_enabled
    detector = config.saturation_detector().config
    assert (detector.queue_depth_threshold, detector.kv_cache_util_threshold) == (2, 0.95)
    assert VirtualGateway(holding=True).runtime.flow is not None
    assert VirtualGateway().runtime.flow is None  # callers that do not drive `advance`
