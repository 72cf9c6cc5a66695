"""Several EPP replicas in the simulator's virtual time, with or without prefix sync.

`ReplicaSet` is a fleet scheduler (`pick(request, snapshots)`) that spreads requests round-
robin over `replicas` EPP replicas, as a Service in front of active-active EPPs does. Each
replica is the EPP's own Director and PoolRuntime (simulator/gateway.py, built from an
EndpointPickerConfig) with its own PrefixIndex and its own in-flight ledger. By default all
replicas read the fleet's metric scrapes; with `scrape_interval_s` each replica takes its own
copy of the pods' state every interval, at its own phase, as independent EPPs scraping the
same pods do. With `sync`, each replica's PrefixSyncHub (the same code the gRPC runtime uses)
hands its updates to the others `delay_s` of virtual time after the pick: batching plus
network.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass

from inference_gateway.scheduling.prefix_sync.hub import PrefixSyncHub, prefix_scorers
from inference_gateway.scheduling.prefix_sync.updates import Batch, UpdateQueue
from inference_gateway.simulator.fleet_types import EndpointSnapshot, RequestResult, SimRequest
from inference_gateway.simulator.gateway import VirtualGateway, seeded_config
from inference_gateway.simulator.tokenizer import SimTokenizer, block_hashes, output_text
from inference_gateway.simulator.workload import SHAREGPT_OUTPUT, SHAREGPT_PROMPT

_UNBOUNDED = 1 << 62


@dataclass(frozen=True)
class ReplicaSetOptions:
    replicas: int = 3
    sync: bool = True
    delay_s: float = 0.02  # pick on one replica -> applied on the others
    config_text: str | None = None  # EndpointPickerConfig; None: the default
    seed: int = 0  # replica i's pickers without a seed of their own break ties with seed + i
    scrape_interval_s: float = 0.0  # >0: each replica refreshes its metrics view on its own ticks


class VirtualReplica(VirtualGateway):
    """One EPP replica: its own Director and PoolRuntime (prefix index, in-flight ledger) and
    sync hub; with a scrape interval it lands the fleet's scrapes only on its own ticks."""

    def __init__(
        self, name: str, options: ReplicaSetOptions, clock: _Clock, phase_s: float = 0.0, seed: int = 0
    ) -> None:
        super().__init__(seeded_config(options.config_text, seed))
        self.name = name
        self.hub = PrefixSyncHub(
            prefix_scorers(self.config.plugins), name, max_age_s=float("inf"), clock=clock
        )
        self._clock = clock
        self._interval = options.scrape_interval_s
        self._phase = phase_s
        self._tick = -1

    def sync(self, snapshots: Sequence[EndpointSnapshot]) -> bool:
        if len(self.endpoints) == len(snapshots) and not self._due():
            return False
        return super().sync(snapshots)

    def _due(self) -> bool:
        if self._interval <= 0:
            return True
        tick = int((self._clock.now - self._phase) // self._interval)
        if tick == self._tick:
            return False
        self._tick = tick
        return True

    def finished(self, result: RequestResult) -> bool:
        """Complete the request if this replica routed it."""
        if result.request_id not in self._in_flight:
            return False
        self.on_finished(result)
        return True


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ReplicaSet:
    """Round-robin over EPP replicas; optionally syncs their prefix indexes with a delay."""

    def __init__(self, options: ReplicaSetOptions) -> None:
        if options.replicas < 1:
            raise ValueError("replicas must be >= 1")
        self.options = options
        self.clock = _Clock()
        n = options.replicas
        self.replicas = [
            VirtualReplica(
                f"replica-{i}", options, self.clock, options.scrape_interval_s * i / n, options.seed + i
            )
            for i in range(n)
        ]
        self._outboxes: list[list[tuple[int, UpdateQueue]]] = [[] for _ in self.replicas]
        if options.sync:
            for i, source in enumerate(self.replicas):
                for j in range(len(self.replicas)):
                    if j != i:
                        queue = UpdateQueue(_UNBOUNDED)
                        source.hub.add_outbox(queue)
                        self._outboxes[i].append((j, queue))
        self._in_transit: list[tuple[float, int, int, Batch]] = []
        self._order = 0
        self._next = 0
        self.delivered = 0

    def pick(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> int | None:
        self.clock.now = request.arrival
        self._deliver(request.arrival)
        i = self._next
        self._next = (i + 1) % len(self.replicas)
        picked = self.replicas[i].pick(request, endpoints)
        self._ship(i)
        return picked

    def on_finished(self, result: RequestResult) -> None:
        for replica in self.replicas:
            if replica.finished(result):
                return

    def _ship(self, source: int) -> None:
        origin = self.replicas[source].name
        for target, queue in self._outboxes[source]:
            if len(queue):
                updates = queue.take_now(len(queue))
                self._order += 1
                due = updates[0].ts + self.options.delay_s
                heapq.heappush(self._in_transit, (due, self._order, target, Batch(origin, updates)))

    def _deliver(self, now: float) -> None:
        transit = self._in_transit
        while transit and transit[0][0] <= now:
            _, _, target, batch = heapq.heappop(transit)
            self.delivered += self.replicas[target].hub.apply(batch)


@dataclass(frozen=True)
class SystemPromptWorkload:
    """N distinct system prompts x M questions each, shuffled, Poisson arrivals."""

    prompts: int = 128  # N
    questions: int = 20  # M
    prefix_tokens: int = 2000
    qps: float = 40.0
    pods: int = 4
    seed: int = 1
    max_model_len: int = 4096

    def requests(self) -> list[SimRequest]:
        rng = random.Random(self.seed)
        tok = SimTokenizer()
        # A distinct tag first, so no two system prompts share a leading block.
        texts = [f"<sys {g}>" + output_text(g, 0, self.prefix_tokens) for g in range(self.prompts)]
        hashes = [tuple(block_hashes(tok.encode(t), 16)) for t in texts]
        order = [g for g in range(self.prompts) for _ in range(self.questions)]
        rng.shuffle(order)
        out: list[SimRequest] = []
        t = 0.0
        for rid, g in enumerate(order):
            t += rng.expovariate(self.qps)
            prompt = texts[g] + f" <q {rid}>" + output_text(rid, 0, SHAREGPT_PROMPT.sample(rng))
            plen = min(tok.count(prompt), self.max_model_len - 1)
            output = min(SHAREGPT_OUTPUT.sample(rng), self.max_model_len - plen)
            out.append(SimRequest(rid, t, plen, output, None, hashes[g], prompt))
        return out
