"""Per-request engine state and the per-iteration plan/outcome records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Status:
    """Sequence states (plain ints: compared on the hot path)."""

    WAITING = 0
    PREFILL = 1
    DECODE = 2
    FINISHED = 3
    ABORTED = 4


class Sequence:
    """One request inside an engine.

    Decoding sequences advance in lockstep (one token per iteration), so their progress is
    derived from the engine's step counter instead of being updated every step: a sequence
    that entered decode at step `s0` with `p_eff` tokens in its KV cache holds
    p_eff + (step - s0) tokens at `step`.
    """

    __slots__ = (
        "arrival",
        "cached_tokens",
        "computed",
        "finish_reason",
        "finish_step",
        "finish_time",
        "first_scheduled",
        "first_token",
        "hashes",
        "held",
        "kv_transferred",
        "lora",
        "max_output",
        "media",
        "n_reg",
        "nblocks",
        "num_tokens",
        "out_before",
        "p_eff",
        "payload",
        "preemptions",
        "priority",
        "prompt_len",
        "request_id",
        "s0",
        "status",
        "token_ids",
        "uid",
    )

    def __init__(
        self,
        uid: int,
        request_id: Any,
        arrival: float,
        prompt_len: int,
        max_output: int,
        lora: str | None,
        hashes: list[int],
        finish_reason: str,
        payload: Any,
        priority: int = 0,
    ) -> None:
        self.uid = uid
        self.media: tuple[tuple[int, int, int], ...] = ()  # encoder.MediaSpan per image/audio
        self.priority = priority  # vLLM's request priority: lower runs first (priority policy)
        self.request_id = request_id
        self.arrival = arrival
        self.prompt_len = prompt_len
        self.max_output = max_output
        self.lora = lora
        self.hashes = hashes
        self.finish_reason = finish_reason
        self.payload = payload
        self.status = Status.WAITING
        self.num_tokens = prompt_len  # tokens to (re)compute before the next output token
        self.computed = 0
        self.nblocks = 0
        self.held: list[int] = []  # hashes of cached blocks this sequence references
        self.n_reg = 0  # leading prompt blocks already looked up or registered
        self.out_before = 0  # output tokens produced before the current decode phase
        self.p_eff = 0
        self.s0 = 0
        self.finish_step = -1
        self.first_scheduled = -1.0
        self.first_token = -1.0
        self.finish_time = -1.0
        self.cached_tokens = 0
        self.preemptions = 0
        # Prompt tokens whose KV a remote prefill pod computed (P/D); lost on preemption.
        self.kv_transferred = 0
        self.token_ids: Any = None  # prompt token ids, kept only when KV events are published

    @property
    def done(self) -> bool:
        return self.status >= Status.FINISHED


@dataclass(slots=True)
class StepPlan:
    step_no: int
    start: float
    end: float
    chunks: list[tuple[Sequence, int]]
    num_decode: int
    num_tokens: int


@dataclass(slots=True)
class StepOutcome:
    plan: StepPlan
    first_tokens: list[Sequence] = field(default_factory=list)
    finished: list[Sequence] = field(default_factory=list)
