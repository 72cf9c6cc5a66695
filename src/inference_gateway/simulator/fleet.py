"""Virtual-time fleet: N simulated vLLM servers driven by a discrete-event clock.

The same Engine as the HTTP server, with no wall-clock waiting: a 10-minute 1000 QPS
workload runs in seconds. A scheduler routes each request on arrival, seeing only the
servers' metrics as last scraped (every `scrape_interval` seconds, staggered across
servers, and visible `staleness` seconds after the scrape).

Usage::

    from inference_gateway.simulator.config import ServerConfig
    from inference_gateway.simulator.fleet import run_fleet
    from inference_gateway.simulator.schedulers import RoundRobinScheduler
    from inference_gateway.simulator.workload import sharegpt_like

    servers = [ServerConfig(name=f"vllm-{i}") for i in range(4)]   # mix profiles freely
    result = run_fleet(sharegpt_like(qps=100, duration_s=60, seed=1), servers,
                       RoundRobinScheduler(), scrape_interval=0.05, staleness=0.0)
    result.results      # list[RequestResult]: arrival, first_token, finish, tokens, endpoint
    result.summary()    # throughput, TTFT / TPOT / NTPOT / e2e percentiles
    result.servers      # per-server EngineStats (preemptions, prefix hits, busy time)

A scheduler is any object with `pick(request, snapshots) -> index | None` (see
fleet_types.Scheduler); None rejects the request. If it also has
`on_finished(result)`, it is told about each completed request. A scheduler that holds
requests (fleet_types.Holding: the EPP with flow control) answers HELD and dispatches them
later; the fleet gives it virtual time after every event while it holds any.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from inference_gateway.kvevents.wire import encode_batch
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet_server import FleetResult, FleetServer, ServerReport
from inference_gateway.simulator.fleet_types import (
    HELD,
    CacheOracle,
    FinishObserver,
    Holding,
    KVEventSink,
    Preempting,
    RequestResult,
    Scheduler,
    SimRequest,
)
from inference_gateway.simulator.sequence import Sequence as EngineSeq
from inference_gateway.simulator.tokenizer import SimTokenizer, block_hashes

_STEP, _SCRAPE, _PUBLISH, _TIMER, _WAKE = 0, 1, 2, 3, 4


class Fleet:
    def __init__(
        self,
        servers: Sequence[ServerConfig],
        scheduler: Scheduler,
        *,
        scrape_interval: float = 0.05,
        staleness: float = 0.0,
    ) -> None:
        if not servers:
            raise ValueError("a fleet needs at least one server")
        self.servers = [FleetServer(i, c) for i, c in enumerate(servers)]
        self.scheduler = scheduler
        self.observer = scheduler if isinstance(scheduler, FinishObserver) else None
        self.kv_sink = scheduler if isinstance(scheduler, KVEventSink) else None
        self.scrape_interval = scrape_interval
        self.staleness = staleness
        self.visible = [s.snapshot(0.0) for s in self.servers]
        self.results: list[RequestResult] = []
        self._heap: list[tuple[float, int, int, int, Any]] = []
        self._order = 0
        self._in_flight = 0
        self._idle_with_work: set[int] = set()
        self._tokenizer = SimTokenizer()
        self._live: dict[Any, tuple[int, EngineSeq]] = {}  # request id -> (server, sequence)
        self._now = 0.0
        if isinstance(scheduler, Preempting):
            scheduler.bind_abort(self.abort)
        if isinstance(scheduler, CacheOracle):
            scheduler.bind_cache_lookup(self.cached_blocks)
        self.holder = scheduler if isinstance(scheduler, Holding) else None
        if self.holder is not None:
            self.holder.bind_dispatch(self._dispatch_held)
        self._wake_at = float("inf")  # the earliest wake-up pushed for the holder

    def run(
        self,
        workload: Iterable[SimRequest],
        progress: Callable[[float], None] | None = None,
    ) -> FleetResult:
        wall0 = time.perf_counter()
        n = len(self.servers)
        for s in self.servers:
            self._push(self.scrape_interval * s.index / n, _SCRAPE, s.index, None)
        arrivals = iter(workload)
        nxt = next(arrivals, None)
        now = 0.0
        next_report = 1.0
        heap = self._heap
        while heap or nxt is not None:
            if heap and (nxt is None or heap[0][0] <= nxt.arrival):
                now, _, kind, i, payload = heapq.heappop(heap)
                if kind == _STEP:
                    self._step_done(self.servers[i], now)
                elif kind == _SCRAPE:
                    if nxt is not None or self._in_flight or self._holding():
                        self._scrape(self.servers[i], now)
                elif kind == _PUBLISH:
                    self.visible[i] = payload
                elif kind == _WAKE:
                    if now >= self._wake_at:
                        self._wake_at = float("inf")
                else:
                    self._in_flight -= 1
                    self._on_timer(self.servers[i], payload, now)
            elif nxt is not None:
                if nxt.arrival < now:
                    raise ValueError("workload arrivals must be in non-decreasing order")
                now = self._now = nxt.arrival
                self._arrive(nxt)
                nxt = next(arrivals, None)
                if self._idle_with_work and (nxt is None or nxt.arrival > now):
                    self._kick(now)  # requests arriving at the same instant share a step
            if self._holding():
                self._advance(now)
            if progress is not None and now >= next_report:
                progress(now)
                next_report = now + 1.0
        incomplete = sum(len(s.engine.running) + s.engine.num_waiting for s in self.servers)
        reports = [ServerReport(s.name, s.profile.name, s.engine.stats) for s in self.servers]
        return FleetResult(self.results, reports, now, time.perf_counter() - wall0, incomplete)

    # ---- events -----------------------------------------------------------------------
    def _push(self, t: float, kind: int, server: int, payload: Any) -> None:
        self._order += 1
        heapq.heappush(self._heap, (t, self._order, kind, server, payload))

    def _push_timer(self, t: float, server: int, payload: Any) -> None:
        """Subclasses' own events: `_on_timer(server, payload, t)` runs at virtual time t.
        A pending timer counts as in flight, so scrapes go on until it fires."""
        self._in_flight += 1
        self._push(t, _TIMER, server, payload)

    def _on_timer(self, server: FleetServer, payload: Any, now: float) -> None:
        raise RuntimeError("a timer fired in a fleet that sets none")

    def _scrape(self, server: FleetServer, now: float) -> None:
        snap = server.snapshot(now)
        if self.staleness > 0:
            self._push(now + self.staleness, _PUBLISH, server.index, snap)
        else:
            self.visible[server.index] = snap
        self._push(now + self.scrape_interval, _SCRAPE, server.index, None)

    def _holding(self) -> bool:
        return self.holder is not None and self.holder.holding > 0

    def _advance(self, now: float) -> None:
        """Let the holder dispatch what it can now; wake it again when it asks to be."""
        assert self.holder is not None
        wake = self.holder.advance(now, self.visible)
        if self._idle_with_work:
            self._kick(now)
        if wake is not None and wake < self._wake_at:
            self._wake_at = wake
            self._push(max(wake, now), _WAKE, 0, None)

    def _dispatch_held(self, req: SimRequest, idx: int | None) -> None:
        """A held request leaves the gateway: onto server idx, or rejected (None)."""
        if idx is None or not 0 <= idx < len(self.servers):
            self._reject(req, -1, "rejected")
            return
        self._place(req, idx)

    def _arrive(self, req: SimRequest) -> None:
        idx = self.scheduler.pick(req, self.visible)
        if idx == HELD and self.holder is not None:
            return
        if idx is None or not 0 <= idx < len(self.servers):
            self._reject(req, -1, "rejected")
            return
        self._place(req, idx)

    def _place(self, req: SimRequest, idx: int, **admit: Any) -> EngineSeq | None:
        """Queue `req` on server idx (its next step starts once this instant's arrivals are in)."""
        server = self.servers[idx]
        if not server.serves(req.model):
            self._reject(req, idx, "not-found")
            return None
        seq = self._admit(server, req, **admit)
        if seq is None:
            self._reject(req, idx, "error")
            return None
        self._live[req.request_id] = (idx, seq)
        if not server.engine.busy:
            self._idle_with_work.add(idx)
        return seq

    def _start_if_idle(self, server: FleetServer, now: float) -> None:
        if not server.engine.busy:
            self._idle_with_work.discard(server.index)
            self._start_step(server, now)

    def _kick(self, now: float) -> None:
        for i in sorted(self._idle_with_work):
            self._start_step(self.servers[i], now)
        self._idle_with_work.clear()

    def _admit(
        self,
        server: FleetServer,
        req: SimRequest,
        *,
        output_tokens: int | None = None,
        payload: Any = None,
        kv_transferred: int = 0,
    ) -> EngineSeq | None:
        cfg = server.config
        lora = None if req.model in (None, cfg.served_model_name) else req.model
        if not server.serves(req.model):
            return None
        prompt_len, hashes, ids = self._prompt_blocks(server, req, lora)
        out_len = output_tokens or req.output_tokens or cfg.output_len.sample(server.rng)
        try:
            return server.engine.add_request(
                req.request_id,
                prompt_len,
                out_len,
                req.arrival,
                lora=lora,
                block_hashes=hashes or (),
                payload=payload,
                kv_transferred=kv_transferred,
                priority=req.engine_priority,
                media=req.media,
                token_ids=ids,
            )
        except ValueError:
            return None

    def _prompt_blocks(
        self, server: FleetServer, req: SimRequest, lora: str | None
    ) -> tuple[int, Sequence[int] | None, list[int] | None]:
        """The prompt's length, block hashes as `server` hashes them, and token ids (if tokenized)."""
        prompt_len, hashes = req.prompt_tokens, req.block_hashes
        ids: list[int] | None = None
        if req.prompt is not None and (hashes is None or server.hasher is not None):
            ids = self._tokenizer.encode(req.prompt)
            prompt_len = prompt_len or len(ids)
            ids = ids[:prompt_len]
            if server.hasher is not None:
                hashes = server.hasher.hashes(ids, lora)
            else:
                hashes = block_hashes(ids, server.engine.cfg.block_size)
        return prompt_len, hashes, ids

    def cached_blocks(self, req: SimRequest) -> list[int]:
        """Leading prompt blocks each server's KV cache holds for `req` now (CacheOracle)."""
        held = []
        for server in self.servers:
            cfg = server.config
            lora = None if req.model in (None, cfg.served_model_name) else req.model
            if not server.serves(req.model):
                held.append(0)
                continue
            _, hashes, _ = self._prompt_blocks(server, req, lora)
            held.append(server.engine.cached_blocks(hashes or (), lora))
        return held

    def _reject(self, req: SimRequest, idx: int, status: str) -> None:
        """A request that got no answer but an error: from the scheduler (idx -1), or from
        server idx, whose error response the scheduler sees as it sees any response end."""
        res = RequestResult(req.request_id, idx, req.arrival, -1.0, -1.0, req.prompt_tokens, 0, status=status)
        if idx < 0:
            self.results.append(res)
        else:
            self._record(res)

    def _record(self, res: RequestResult) -> None:
        self.results.append(res)
        if self.observer is not None:
            self.observer.on_finished(res)

    def _start_step(self, server: FleetServer, now: float) -> None:
        plan = server.engine.begin_step(now)
        if plan is not None:
            self._in_flight += 1
            self._push(plan.end, _STEP, server.index, None)

    def _step_done(self, server: FleetServer, now: float) -> None:
        self._in_flight -= 1
        engine = server.engine
        out = engine.finish_step()
        if server.kv_log is not None:
            batch = server.kv_log.take(now)
            if batch is not None and self.kv_sink is not None:
                self.kv_sink.on_kv_events(server.index, encode_batch(batch))
        for seq in out.finished:
            self._on_finished(server, seq, now)
        if engine.has_work():
            self._start_step(server, now)

    def abort(self, request_id: Any) -> bool:
        """End a request the gateway preempted (its client got an error): the engine drops it
        and frees its blocks; its result has status `preempted`. False if it already ended."""
        entry = self._live.pop(request_id, None)
        if entry is None or entry[1].done:
            return False
        idx, seq = entry
        produced = self.servers[idx].engine.tokens_generated(seq)
        self.servers[idx].engine.abort(seq)
        res = RequestResult(request_id, idx, seq.arrival, seq.first_token, -1.0, seq.prompt_len, produced)
        res.cached_tokens, res.preemptions, res.status = seq.cached_tokens, seq.preemptions, "preempted"
        self._record(res)
        return True

    def _on_finished(self, server: FleetServer, seq: EngineSeq, now: float) -> None:
        self._live.pop(seq.request_id, None)
        self._record(
            RequestResult(
                seq.request_id,
                server.index,
                seq.arrival,
                seq.first_token,
                seq.finish_time,
                seq.prompt_len,
                seq.max_output,
                seq.cached_tokens,
                seq.preemptions,
            )
        )


def run_fleet(
    workload: Iterable[SimRequest],
    servers: Sequence[ServerConfig],
    scheduler: Scheduler,
    *,
    scrape_interval: float = 0.05,
    staleness: float = 0.0,
    progress: Callable[[float], None] | None = None,
) -> FleetResult:
    """Run `workload` (sorted by arrival) through a fleet; see the module docstring."""
    fleet = Fleet(servers, scheduler, scrape_interval=scrape_interval, staleness=staleness)
    return fleet.run(workload, progress)
