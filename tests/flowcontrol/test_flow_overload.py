"""The real FlowController under simulated overload (virtual time: deterministic and fast)."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from inference_gateway.flowcontrol import (
    FlowController,
    FlowControlMetrics,
    QueueOutcome,
    parse_flow_control,
)
from inference_gateway.scheduling.plugins.concurrency_detector import ConcurrencyDetector

from .harness import Fleet, Result, TrafficClass, VirtualTimeLoop, offer_load, percentile, run_virtual


def controller(loop: asyncio.AbstractEventLoop, fleet: Fleet, section: dict[str, Any]) -> FlowController:
    registry = CollectorRegistry()
    config = parse_flow_control(section)
    return FlowController(
        config,
        ConcurrencyDetector(parameters={"maxConcurrency": fleet.slots}),
        FlowControlMetrics(registry),
        loop.time,
    )


def by_class(results: list[Result], name: str) -> list[Result]:
    return [r for r in results if r.cls == name]


CRITICAL = TrafficClass("critical", 1, rate=64)
STANDARD = TrafficClass("standard", 0, rate=960)
SHEDDABLE = TrafficClass("sheddable", -1, rate=320)


def critical_scenario(
    classes: list[TrafficClass], seed: int = 7, real_time: bool = False
) -> tuple[list[Result], FlowController, int]:
    fleet = Fleet(size=8, slots=8, service_s=0.1)  # capacity: 640 requests/s

    async def main(loop: VirtualTimeLoop) -> tuple[list[Result], FlowController, int]:
        ctl = controller(
            loop, fleet, {"defaultRequestTTL": "1s", "priorityBands": [{"priority": 0, "maxRequests": 300}]}
        )
        results, sent = await offer_load(ctl, fleet, classes, 3.0, random.Random(seed))
        return results, ctl, sent

    return run_virtual(main, real_time)


@pytest.mark.parametrize("real_time", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_critical_latency_holds_under_overload_while_sheddable_is_rejected(real_time: bool) -> None:
    unloaded, _, _ = critical_scenario([CRITICAL], real_time=real_time)
    loaded, ctl, sent = critical_scenario([CRITICAL, STANDARD, SHEDDABLE], real_time=real_time)

    base_p90 = percentile([r.latency for r in unloaded], 0.9)
    crit = by_class(loaded, "critical")
    crit_p90 = percentile([r.latency for r in crit], 0.9)
    print(f"critical p90 unloaded {base_p90 * 1000:.1f} ms, overloaded {crit_p90 * 1000:.1f} ms")
    assert all(r.status == 200 for r in crit)
    assert crit_p90 <= 1.2 * base_p90

    shed = Counter(r.status for r in by_class(loaded, "sheddable"))
    print(f"sheddable outcomes {dict(shed)}")
    assert shed[429] >= 0.9 * sum(shed.values())
    assert ctl.outcomes[QueueOutcome.REJECTED_SHEDDABLE] == shed[429]

    std = Counter(r.status for r in by_class(loaded, "standard"))
    print(f"standard outcomes {dict(std)}")
    assert std[200] > 0 and std[429] + std[503] > 0  # overloaded: some served, the excess refused
    assert len(loaded) == sent == sum(ctl.outcomes.values())


def test_without_flow_control_priorities_the_same_overload_hurts_critical() -> None:
    """Control experiment: with everything passing straight through, Critical queues in the servers."""
    fleet = Fleet(size=8, slots=8, service_s=0.1)

    async def main(loop: VirtualTimeLoop) -> list[Result]:
        ctl = FlowController(parse_flow_control({}), lambda endpoints: False, clock=loop.time)
        results, _ = await offer_load(ctl, fleet, [CRITICAL, STANDARD], 3.0, random.Random(7))
        return results

    results = run_virtual(main)
    unloaded, _, _ = critical_scenario([CRITICAL])
    base_p90 = percentile([r.latency for r in unloaded], 0.9)
    assert percentile([r.latency for r in by_class(results, "critical")], 0.9) > 2 * base_p90


def fairness_shares(policy: str) -> tuple[float, float, int]:
    """Two tenants, 10:1 offered load, one band; shares of dispatches while both are backlogged."""
    fleet = Fleet(size=4, slots=4, service_s=0.1)  # capacity: 160 requests/s
    noisy = TrafficClass("noisy", 0, rate=1000, flow_id="tenant-noisy")
    quiet = TrafficClass("quiet", 0, rate=100, flow_id="tenant-quiet")  # above its fair half (80/s)
    section = {
        "defaultRequestTTL": "5s",
        "priorityBands": [{"priority": 0, "maxRequests": 100000, "fairnessPolicyRef": policy}],
    }

    async def main(loop: VirtualTimeLoop) -> tuple[float, float, int]:
        ctl = controller(loop, fleet, section)
        samples: list[tuple[int, int, int, int]] = []
        done = asyncio.Event()

        async def monitor() -> None:
            while not done.is_set():
                d = {flow_id: n for (flow_id, _), n in ctl.dispatches.items()}
                samples.append(
                    (
                        ctl.queued(flow_id="tenant-noisy"),
                        ctl.queued(flow_id="tenant-quiet"),
                        d.get("tenant-noisy", 0),
                        d.get("tenant-quiet", 0),
                    )
                )
                await asyncio.sleep(0.01)

        watcher = loop.create_task(monitor())
        await offer_load(ctl, fleet, [noisy, quiet], 3.0, random.Random(11))
        done.set()
        await watcher
        both = [(a, b) for a, b in itertools.pairwise(samples) if min(a[:2]) and min(b[:2])]
        noisy_n = sum(b[2] - a[2] for a, b in both)
        quiet_n = sum(b[3] - a[3] for a, b in both)
        total = noisy_n + quiet_n
        return noisy_n / total, quiet_n / total, total

    return run_virtual(main)


def test_round_robin_shares_dispatches_between_tenants_despite_10_to_1_load() -> None:
    noisy, quiet, total = fairness_shares("round-robin-fairness-policy")
    print(f"round-robin: noisy {noisy:.1%}, quiet {quiet:.1%} of {total} dispatches while both backlogged")
    assert total >= 200
    assert noisy >= 0.45 and quiet >= 0.45


def test_global_strict_policy_lets_the_noisy_tenant_dominate() -> None:
    """The same measurement fails for a policy without fairness, so it can tell them apart."""
    noisy, quiet, total = fairness_shares("global-strict-fairness-policy")
    print(f"global-strict: noisy {noisy:.1%}, quiet {quiet:.1%} of {total} dispatches")
    assert quiet < 0.2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_request_gets_exactly_one_outcome_and_bounds_hold(seed: int) -> None:
    fleet = Fleet(size=4, slots=4, service_s=0.05)  # capacity: 320 requests/s
    section = {
        "maxRequests": 60,
        "maxBytes": "50k",  # 50 requests of 1000 bytes
        "defaultRequestTTL": "150ms",
        "priorityBands": [{"priority": 0, "maxRequests": 45}, {"priority": 1, "maxRequests": 40}],
    }
    classes = [
        TrafficClass("critical", 1, 150, "a", patience_s=0.5),
        TrafficClass("standard-a", 0, 300, "a", patience_s=0.4),
        TrafficClass("standard-b", 0, 150, "b", patience_s=1.0),
        TrafficClass("sheddable", -1, 100, "c"),
    ]

    async def main(loop: VirtualTimeLoop) -> tuple[list[Result], int, FlowController, list[tuple[int, ...]]]:
        ctl = controller(loop, fleet, section)
        peaks: list[tuple[int, ...]] = []
        done = asyncio.Event()

        async def monitor() -> None:
            while not done.is_set():
                peaks.append(
                    (ctl.queued(priority=0), ctl.queued(priority=1), ctl.queued(), ctl.occupancy.bytes)
                )
                await asyncio.sleep(0.002)

        watcher = loop.create_task(monitor())
        results, sent = await offer_load(ctl, fleet, classes, 2.0, random.Random(seed))
        done.set()
        await watcher
        return results, sent, ctl, peaks

    results, sent, ctl, peaks = run_virtual(main)
    statuses = Counter(r.status for r in results)
    outcomes = ctl.outcomes
    print(f"seed {seed}: {sent} requests, statuses {dict(statuses)}, outcomes {dict(outcomes)}")

    assert len(results) == sent and len({r.request_id for r in results}) == sent
    assert sum(outcomes.values()) == sent
    assert (
        statuses[429] == outcomes[QueueOutcome.REJECTED_CAPACITY] + outcomes[QueueOutcome.REJECTED_SHEDDABLE]
    )
    assert statuses[503] == outcomes[QueueOutcome.EVICTED_TTL]
    # 499: the client left, either while queued (evicted) or after dispatch (counted as dispatched)
    assert (
        statuses[200] + statuses[499]
        == outcomes[QueueOutcome.DISPATCHED] + outcomes[QueueOutcome.EVICTED_CONTEXT_CANCELLED]
    )
    assert outcomes[QueueOutcome.EVICTED_CONTEXT_CANCELLED] > 0
    assert outcomes[QueueOutcome.EVICTED_TTL] > 0 and outcomes[QueueOutcome.REJECTED_CAPACITY] > 0

    assert max(p[0] for p in peaks) <= 45
    assert max(p[1] for p in peaks) <= 40
    assert max(p[2] for p in peaks) <= 50  # maxBytes binds before the global maxRequests
    assert max(p[3] for p in peaks) <= 50_000
    assert max(p[2] for p in peaks) >= 40  # the bounds were actually reached

    assert ctl.queued() == 0 and ctl.occupancy.requests == 0 and ctl.occupancy.bytes == 0
    assert ctl.in_flight("pool") == 0
    assert all(e.in_flight == 0 for e in fleet.endpoints)
