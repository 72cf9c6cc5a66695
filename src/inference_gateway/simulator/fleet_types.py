"""Data exchanged with the virtual-time fleet: requests in, snapshots to the scheduler,
per-request results out, and the scheduler Protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(slots=True)
class SimRequest:
    """One request of a workload.

    model: None or the base model name for the base model, else a LoRA adapter name.
    output_tokens: exact output length (None: sampled from the server's output_len).
    block_hashes: chain hashes of the prompt's shareable leading full blocks (see
      workload.py); None with `prompt` set means "tokenize the prompt and hash it";
      None without a prompt means the prompt shares nothing.
    prompt: text for schedulers that look at it (prefix-aware ones); optional.
    priority: the gateway's priority (criticality band or InferenceObjective priority).
    engine_priority: the `priority` body field the server sees (vLLM: lower runs first);
      schedulers that pass priority on (the EPP's engine-priority plugin) set it.
    """

    request_id: int | str
    arrival: float
    prompt_tokens: int
    output_tokens: int | None = None
    model: str | None = None
    block_hashes: Sequence[int] | None = None
    prompt: str | None = None
    priority: int = 0
    engine_priority: int = 0
    # images / audio: (content digest, first placeholder position, tokens), see simulator/encoder.py
    media: Sequence[tuple[int, int, int]] = ()
    body: bytes | None = None  # the client's JSON body (chat with media); None: built from `prompt`
    headers: dict[str, str] | None = None  # the client's own request headers (e.g. SLO objectives)


@dataclass(frozen=True, slots=True)
class EndpointSnapshot:
    """What a metrics scrape of one server saw (field names follow the gateway's
    EndpointMetrics). updated_at is the virtual time of the scrape."""

    index: int
    name: str
    model: str
    updated_at: float
    waiting_queue: int
    running_requests: int
    kv_cache_usage: float
    active_adapters: frozenset[str]
    waiting_adapters: frozenset[str]
    max_active_adapters: int
    block_size: int
    num_gpu_blocks: int
    prefix_cache_hit_rate: float
    num_preemptions: int
    # Inter-token latency histogram totals, as vllm:inter_token_latency_seconds_{sum,count}.
    itl_sum_seconds: float = 0.0
    itl_count: int = 0
    # What the node's dcgm-exporter shows: share of the last second the GPU was busy (0..1).
    gpu_util: float = 0.0
    # The LoRA adapters the server has loaded, idle or not: what its GET /v1/models lists.
    adapters: frozenset[str] = frozenset()


@dataclass(slots=True)
class RequestResult:
    request_id: int | str
    endpoint: int  # index into the fleet's servers; -1 if rejected before routing
    arrival: float
    first_token: float  # -1 if none
    finish: float  # -1 if it never finished
    prompt_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    preemptions: int = 0
    # ok | rejected (scheduler returned None) | error (invalid request) | preempted (by the gateway)
    # | not-found (the server lacks the requested adapter: vLLM's 404 NotFoundError)
    status: str = "ok"
    prefill_endpoint: int = -1  # P/D: the server that prefilled it; -1 if `endpoint` did
    encode_endpoint: int = -1  # E/P/D: the (first) server that encoded its media; -1: none

    @property
    def ttft(self) -> float:
        return self.first_token - self.arrival

    @property
    def e2e(self) -> float:
        return self.finish - self.arrival

    @property
    def tpot(self) -> float:
        """Mean time per output token after the first (0 for single-token outputs)."""
        if self.output_tokens <= 1:
            return 0.0
        return (self.finish - self.first_token) / (self.output_tokens - 1)

    @property
    def ntpot(self) -> float:
        """End-to-end latency normalised by output length."""
        return self.e2e / max(self.output_tokens, 1)


HELD = -2  # `pick`'s answer when the scheduler holds the request and dispatches it later


class Scheduler(Protocol):
    """Routes one request: return the index of an endpoint, or None to reject it."""

    def pick(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> int | None: ...


@runtime_checkable
class Preempting(Protocol):
    """Optional: schedulers that end requests (gateway preemption) get the fleet's abort."""

    def bind_abort(self, abort: Callable[[int | str], bool]) -> None: ...


@runtime_checkable
class KVEventSink(Protocol):
    """Optional: schedulers that implement this get each server's KV-event batches (vLLM's
    msgpack payload) as soon as its engine step ends, as a ZMQ subscriber would."""

    def on_kv_events(self, server: int, payload: bytes) -> None: ...


@runtime_checkable
class FinishObserver(Protocol):
    """Optional: schedulers that implement this hear about every completed request."""

    def on_finished(self, result: RequestResult) -> None: ...


@runtime_checkable
class CacheOracle(Protocol):
    """Optional: schedulers that implement this get a lookup of the leading prompt blocks each
    server's KV cache holds for a request right now (by server index). No real router can know
    this; the prefix benchmark's oracle policy uses it as the reference hit rate."""

    def bind_cache_lookup(self, lookup: Callable[[SimRequest], list[int]]) -> None: ...


@runtime_checkable
class Holding(Protocol):
    """Optional: schedulers that hold requests (the EPP's flow-control queue) answer `pick` with
    HELD and later hand each request to `dispatch(request, server index or None to reject)`.
    The fleet calls `advance` after every event while `holding` is non-zero; it returns the
    virtual time at which the scheduler wants `advance` called again (None: no timer)."""

    @property
    def holding(self) -> int: ...

    def bind_dispatch(self, dispatch: Callable[[SimRequest, int | None], None]) -> None: ...

    def advance(self, now: float, snapshots: Sequence[EndpointSnapshot]) -> float | None: ...
