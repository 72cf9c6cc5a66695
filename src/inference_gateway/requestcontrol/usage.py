"""Token usage from responses, and the running-requests view (upstream's request tracking).

Usage is read without holding the response: the scanner looks for the last `"usage": {...}`
object as chunks stream by, keeping only a few bytes of carry-over plus the object being
completed. That covers non-streaming JSON bodies and the last SSE chunk that vLLM/OpenAI send
when `stream_options.include_usage` is set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter

_USAGE_KEY = b'"usage"'
_USAGE_AT = re.compile(rb'"usage"\s{0,16}:\s{0,16}\{')
CARRY_BYTES = 48  # enough to find the key when a chunk boundary splits it
MAX_USAGE_BYTES = 4096
MAX_PARSE_ATTEMPTS = 16


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0


def usage_from_object(obj: Any) -> Usage | None:
    """OpenAI chat/completions (prompt_/completion_tokens) or Responses API (input_/output_tokens)."""
    if not isinstance(obj, dict):
        return None
    prompt = _int(obj.get("prompt_tokens", obj.get("input_tokens")))
    completion = _int(obj.get("completion_tokens", obj.get("output_tokens")))
    details = obj.get("prompt_tokens_details") or obj.get("input_tokens_details") or {}
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    total = _int(obj.get("total_tokens")) or prompt + completion
    return Usage(prompt, completion, total, cached)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class UsageScanner:
    """Feed response body chunks; `usage` is the last complete usage object seen."""

    __slots__ = ("_carry", "_pending", "bytes_seen", "usage")

    def __init__(self) -> None:
        self._carry = b""
        self._pending: bytes | None = None
        self.bytes_seen = 0
        self.usage: Usage | None = None

    @property
    def buffered_bytes(self) -> int:
        """What the scanner holds between chunks (bounded, whatever the response size)."""
        return len(self._carry) + (len(self._pending) if self._pending is not None else 0)

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.bytes_seen += len(chunk)
        window = self._carry + chunk if self._carry else chunk
        start = self._last_new_match(window, len(self._carry))
        if start is not None:
            self._pending = window[start:]
        elif self._pending is not None:
            self._pending += chunk
        if self._pending is not None:
            self._try_complete()
        self._carry = window[-CARRY_BYTES:]

    @staticmethod
    def _last_new_match(window: bytes, carried: int) -> int | None:
        """Start of the last `"usage": {` not already seen in the previous window."""
        end = len(window)
        while (pos := window.rfind(_USAGE_KEY, 0, end)) >= 0:
            m = _USAGE_AT.match(window, pos)
            if m is not None and m.end() <= carried:
                return None  # this one and everything before it was scanned last time
            escaped = pos > 0 and window[pos - 1] == 0x5C  # \"usage\" inside a JSON string
            if m is not None and not escaped:
                return m.end() - 1
            end = pos
        return None

    def _try_complete(self) -> None:
        pending = self._pending
        assert pending is not None
        close = -1
        for _ in range(MAX_PARSE_ATTEMPTS):
            close = pending.find(b"}", close + 1)
            if close < 0:
                break
            try:
                obj = orjson.loads(pending[: close + 1])
            except orjson.JSONDecodeError:
                continue
            self.usage = usage_from_object(obj) or self.usage
            self._pending = None
            return
        if close >= 0 or len(pending) > MAX_USAGE_BYTES:
            self._pending = None  # not a usage object we can read; give up on this one


@dataclass(frozen=True, slots=True)
class UsageKey:
    model: str
    target_model: str
    objective: str
    flow_id: str


@dataclass(slots=True)
class TokenTotals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


ACCOUNT_LABELS = ("model_name", "target_model_name", "objective", "fairness_id")


class UsageAccounting:
    """Token counts per model, objective and flow."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.totals: dict[UsageKey, TokenTotals] = {}
        self._counters: dict[UsageKey, tuple[Any, Any]] = {}
        self.prompt_total = Counter(
            "inference_objective_prompt_tokens",
            "Prompt tokens served, per model, objective and fairness id.",
            ACCOUNT_LABELS,
            registry=registry,
        )
        self.completion_total = Counter(
            "inference_objective_completion_tokens",
            "Completion tokens served, per model, objective and fairness id.",
            ACCOUNT_LABELS,
            registry=registry,
        )

    def record(self, key: UsageKey, usage: Usage) -> None:
        totals = self.totals.get(key)
        if totals is None:
            totals = self.totals[key] = TokenTotals()
        totals.requests += 1
        totals.prompt_tokens += usage.prompt_tokens
        totals.completion_tokens += usage.completion_tokens
        totals.cached_tokens += usage.cached_tokens
        counters = self._counters.get(key)
        if counters is None:  # labels() validates and locks on every call: look children up once
            labels = (key.model, key.target_model, key.objective, key.flow_id)
            counters = self._counters[key] = (
                self.prompt_total.labels(*labels),
                self.completion_total.labels(*labels),
            )
        counters[0].inc(usage.prompt_tokens)
        counters[1].inc(usage.completion_tokens)
