"""Virtual-time disaggregated prefill/decode: the fleet with prefill pods that ship KV caches.

A P/D scheduler answers each arrival with a decode server and, optionally, a prefill server
(`PDPick`). Without a prefill server (or when it is the decode server) the request runs
aggregated. Otherwise, as in the real-time server (disagg.py):

1. the prefill server runs the request with one output token (its whole prompt is prefill);
2. when that finishes, the KV cache of all but the last prompt token moves to the decode
   server: `latency + tokens x kv_bytes_per_token / bandwidth` (the decode server's
   `kv_transfer` and profile). With `shared_links`, transfers queue FIFO on the prefill
   server's egress and on the decode server's ingress link (each link on its own; the
   transfer completes when both have carried it), so a busy pod's NIC is a bottleneck like
   its GPU;
3. the decode server admits it with those tokens already computed: it computes the last
   prompt token (the first output token) and decodes.

The result's `endpoint` is the decode server, `prefill_endpoint` the prefill server, and
`arrival` the client's arrival, so TTFT spans prefill queueing, prefill, transfer and the
decode server's first step.

Encode disaggregation (E/P/D): when the pick also names encode servers (llm-d's
`x-encoder-hosts-ports`), a request with images or audio first has each item encoded there,
items spread round robin over the named servers as llm-d's sidecar does. An encode server
runs its encoder only: items queue FIFO on its GPU at the profile's
`encoder_ms_per_1k_tokens`, unless its encoder cache (vLLM's, sized as the server's) holds
them; the output then crosses the encode server's link to the request's next server
(`embedding_bytes_per_token`, the same KVTransfer figures). When every item has arrived, the
request goes on as above with nothing left to encode.

Usage::

    roles = ["prefill", "decode", "decode", "decode"]
    result = run_pd_fleet(workload, [ServerConfig(name=f"p{i}") for i in range(4)],
                          LeastLoadedPDScheduler(roles, threshold_tokens=512))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.disagg import transferred_tokens
from inference_gateway.simulator.fleet import Fleet
from inference_gateway.simulator.fleet_server import FleetResult, FleetServer
from inference_gateway.simulator.fleet_types import EndpointSnapshot, RequestResult, SimRequest
from inference_gateway.simulator.sequence import Sequence as EngineSeq

PREFILL_ROLES = frozenset({"prefill", "both", "prefill-decode"})
DECODE_ROLES = frozenset({"decode", "both", "prefill-decode"})


@dataclass(frozen=True, slots=True)
class PDPick:
    decode: int
    prefill: int | None = None  # None: the decode server prefills (aggregated)
    encoders: tuple[int, ...] = ()  # servers that encode the request's media (E/P/D)


class PDScheduler(Protocol):
    """Routes one request to a decode server and optionally a prefill server; None rejects.
    `pick` (the fleet's Scheduler protocol) answers the aggregated case."""

    def pick(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> int | None: ...

    def pick_pd(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> PDPick | None: ...


class LeastLoadedPDScheduler:
    """Reference policy: the decode-capable and prefill-capable servers with the fewest
    waiting + running requests (ties rotate); prompts shorter than `threshold_tokens` stay
    on the decode server. `roles[i]` is server i's role: prefill, decode or both."""

    def __init__(self, roles: Sequence[str], threshold_tokens: int = 0) -> None:
        unknown = set(roles) - PREFILL_ROLES - DECODE_ROLES
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)} (use prefill, decode or both)")
        self.decoders = [i for i, r in enumerate(roles) if r in DECODE_ROLES]
        self.prefillers = [i for i, r in enumerate(roles) if r in PREFILL_ROLES]
        if not self.decoders:
            raise ValueError("a P/D fleet needs at least one decode-capable server")
        self.threshold_tokens = threshold_tokens
        self._turn = 0

    def _least(self, candidates: list[int], endpoints: Sequence[EndpointSnapshot]) -> int:
        self._turn += 1
        n = len(candidates)
        order = [candidates[(self._turn + k) % n] for k in range(n)]
        return min(order, key=lambda i: endpoints[i].waiting_queue + endpoints[i].running_requests)

    def pick_pd(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> PDPick | None:
        decode = self._least(self.decoders, endpoints)
        if not self.prefillers or request.prompt_tokens < self.threshold_tokens:
            return PDPick(decode)
        return PDPick(decode, self._least(self.prefillers, endpoints))

    def pick(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> int | None:
        pick = self.pick_pd(request, endpoints)
        return None if pick is None else pick.decode


@dataclass(frozen=True, slots=True)
class _PrefillStage:
    request: SimRequest
    decode: int


@dataclass(frozen=True, slots=True)
class _DecodeStage:
    request: SimRequest
    prefill: int
    kv_tokens: int
    prefill_preemptions: int


@dataclass(frozen=True, slots=True)
class _EncodedStage:
    request: SimRequest
    pick: PDPick


class PDFleet(Fleet):
    def __init__(
        self,
        servers: Sequence[ServerConfig],
        scheduler: PDScheduler,
        *,
        scrape_interval: float = 0.05,
        staleness: float = 0.0,
        shared_links: bool = True,
    ) -> None:
        super().__init__(servers, scheduler, scrape_interval=scrape_interval, staleness=staleness)
        self.pd = scheduler
        self.shared_links = shared_links
        self._egress_free = [0.0] * len(self.servers)
        self._ingress_free = [0.0] * len(self.servers)
        self.transfers = 0
        self.transfer_seconds = 0.0  # prefill done -> KV on the decode server, queueing included
        self.link_wait_seconds = 0.0
        self._encoder_free = [0.0] * len(self.servers)
        self._encode_origin: dict[int | str, tuple[float, int]] = {}
        self.encoded_items = 0
        self.encode_seconds = 0.0  # arrival -> every item's encoder output on the next server

    def run(
        self, workload: Iterable[SimRequest], progress: Callable[[float], None] | None = None
    ) -> FleetResult:
        result = super().run(workload, progress)
        done = [r for r in result.results if r.status == "ok"]
        result.extra["disaggregated"] = float(sum(r.prefill_endpoint >= 0 for r in done))
        result.extra["kv_transfers"] = float(self.transfers)
        if self.transfers:
            result.extra["kv_transfer_mean_s"] = self.transfer_seconds / self.transfers
            result.extra["kv_link_wait_mean_s"] = self.link_wait_seconds / self.transfers
        result.extra["remote_encoded"] = float(sum(r.encode_endpoint >= 0 for r in done))
        if self.encoded_items:
            result.extra["encode_stage_mean_s"] = self.encode_seconds / max(result.extra["remote_encoded"], 1)
        return result

    def _arrive(self, req: SimRequest) -> None:
        n = len(self.servers)
        pick = self.pd.pick_pd(req, self.visible)
        if pick is None or not 0 <= pick.decode < n:
            self._reject(req, -1, "rejected")
            return
        encoders = [e for e in pick.encoders if 0 <= e < n]
        if encoders and req.media:
            self._encode(req, pick, encoders)
            return
        self._dispatch(req, pick)

    def _encode(self, req: SimRequest, pick: PDPick, encoders: list[int]) -> None:
        """Each media item on an encode server (round robin), then its output to the next hop."""
        now = req.arrival
        target = self.servers[pick.prefill if pick.prefill is not None else pick.decode]
        ready = now
        for k, span in enumerate(req.media):
            server = self.servers[encoders[k % len(encoders)]]
            tokens = server.engine.encoder.encode([span], 0)
            seconds = tokens * server.profile.encoder_ms_per_1k_tokens / 1e6
            if seconds:
                start = max(now, self._encoder_free[server.index])
                self._encoder_free[server.index] = start + seconds
                server.engine.stats.encoder_tokens += tokens
                server.engine.stats.busy_time += seconds
                done = start + seconds
            else:
                done = now  # an encoder-cache hit
            wire = target.config.kv_transfer.seconds(span[2], server.profile.embedding_bytes_per_token)
            ready = max(ready, done + wire)
            self.encoded_items += 1
        self.encode_seconds += ready - now
        self._push_timer(ready, pick.decode, _EncodedStage(req, pick))

    def _dispatch(self, req: SimRequest, pick: PDPick) -> None:
        n = len(self.servers)
        p = pick.prefill
        if p is None or p == pick.decode or not 0 <= p < n or req.prompt_tokens < 2:
            self._place(req, pick.decode)
            return
        self._place(req, p, output_tokens=1, payload=_PrefillStage(req, pick.decode))

    def _on_finished(self, server: FleetServer, seq: EngineSeq, now: float) -> None:
        stage = seq.payload
        if isinstance(stage, _PrefillStage):
            self._transfer(server, stage, seq, now)
        elif isinstance(stage, _DecodeStage):
            self._record(_decode_result(server.index, stage, seq))
        else:
            super()._on_finished(server, seq, now)

    def _transfer(self, prefill: FleetServer, stage: _PrefillStage, seq: EngineSeq, now: float) -> None:
        decode = self.servers[stage.decode]
        tokens = transferred_tokens(seq.prompt_len)
        kv = decode.config.kv_transfer
        wire = kv.wire_seconds(tokens, decode.profile.kv_bytes_per_token)
        done = now + wire
        if self.shared_links:
            done = max(
                self._queue_on(self._egress_free, prefill.index, now, wire),
                self._queue_on(self._ingress_free, decode.index, now, wire),
            )
        arrive = done + kv.latency_ms / 1000.0
        self.transfers += 1
        self.transfer_seconds += arrive - now
        self.link_wait_seconds += max(0.0, done - wire - now)
        payload = _DecodeStage(stage.request, prefill.index, tokens, seq.preemptions)
        self._push_timer(arrive, decode.index, payload)

    @staticmethod
    def _queue_on(free_at: list[float], link: int, now: float, wire: float) -> float:
        """FIFO on one link; returns when this transfer's bytes have crossed it. Each link is
        work-conserving on its own (no gaps waiting for the other end), and the transfer is
        done when both links have carried it: exact when one end is the bottleneck."""
        free_at[link] = max(now, free_at[link]) + wire
        return free_at[link]

    def _on_timer(self, server: FleetServer, payload: Any, now: float) -> None:
        if isinstance(payload, _EncodedStage):
            self._encoded(payload, now)
            return
        stage: _DecodeStage = payload
        # The decode server sees the request when its KV has arrived (as vLLM's decode engine
        # would after the sidecar's prefill call); the result keeps the client's arrival.
        req = dataclasses.replace(stage.request, arrival=now)
        seq = self._admit(server, req, payload=stage, kv_transferred=stage.kv_tokens)
        if seq is None:
            self._reject(stage.request, server.index, "error")
            return
        self._start_if_idle(server, now)

    def _encoded(self, stage: _EncodedStage, now: float) -> None:
        """The encoder outputs are in: on to prefill/decode with nothing left to encode; the
        result keeps the client's arrival and names the first encode server."""
        req = dataclasses.replace(stage.request, arrival=now, media=())
        self._encode_origin[req.request_id] = (stage.request.arrival, stage.pick.encoders[0])
        self._dispatch(req, stage.pick)
        first = stage.pick.prefill if stage.pick.prefill is not None else stage.pick.decode
        self._start_if_idle(self.servers[first], now)

    def _record(self, res: RequestResult) -> None:
        origin = self._encode_origin.pop(res.request_id, None)
        if origin is not None:
            res = dataclasses.replace(res, arrival=origin[0], encode_endpoint=origin[1])
        super()._record(res)


def _decode_result(index: int, stage: _DecodeStage, seq: EngineSeq) -> RequestResult:
    return RequestResult(
        stage.request.request_id,
        index,
        stage.request.arrival,
        seq.first_token,
        seq.finish_time,
        seq.prompt_len,
        seq.max_output,
        seq.cached_tokens,
        seq.preemptions + stage.prefill_preemptions,
        prefill_endpoint=stage.prefill,
    )


def run_pd_fleet(
    workload: Iterable[SimRequest],
    servers: Sequence[ServerConfig],
    scheduler: PDScheduler,
    *,
    scrape_interval: float = 0.05,
    staleness: float = 0.0,
    shared_links: bool = True,
    progress: Callable[[float], None] | None = None,
) -> FleetResult:
    """Run `workload` (sorted by arrival) through a P/D fleet; see the module docstring."""
    fleet = PDFleet(
        servers,
        scheduler,
        scrape_interval=scrape_interval,
        staleness=staleness,
        shared_links=shared_links,
    )
    return fleet.run(workload, progress)
