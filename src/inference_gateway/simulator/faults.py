"""Fault injection for the simulated model server, for reliability tests.

A fault is `NAME[:ARG]`, set with `--fault` at start or replaced at runtime through
`POST /admin/faults {"faults": [...]}` (`GET` lists them, `DELETE` clears them):

| fault                   | effect                                                                 |
|-------------------------|------------------------------------------------------------------------|
| `errorNNN[:P]`          | generation requests answer HTTP NNN (OpenAI JSON) with probability P   |
| `hang[:P]`              | generation requests never answer (until the client gives up)           |
| `die-after-tokens:N`    | the process exits once a request has produced N tokens (a crash)       |
| `stall-after-tokens:N`  | a response stops making progress after N tokens (stream stays open)    |
| `metrics-down`          | /metrics answers 503                                                   |
| `metrics-garbage`       | /metrics answers 200 with text that is not Prometheus exposition       |
| `metrics-hang`          | /metrics never answers                                                 |

P defaults to 1. Faults are per process; they never touch the engine's accounting.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass

_ERROR = re.compile(r"error(\d{3})")
_FLAGS = ("metrics-down", "metrics-garbage", "metrics-hang")
_TOKEN_FAULTS = ("die-after-tokens", "stall-after-tokens")

GARBAGE_METRICS = b"<html><body>502 Bad Gateway\x00\xff not prometheus {{{\n" * 8


class FaultSpecError(ValueError):
    """A fault string that does not follow the grammar above."""


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    status: int = 0  # errorNNN
    probability: float = 1.0  # errorNNN, hang
    tokens: int = 0  # *-after-tokens

    def __str__(self) -> str:
        if self.name in _TOKEN_FAULTS:
            return f"{self.name}:{self.tokens}"
        if self.name in ("error", "hang"):
            base = f"error{self.status}" if self.name == "error" else "hang"
            return base if self.probability == 1.0 else f"{base}:{self.probability:g}"
        return self.name


def parse_fault(spec: str) -> Fault:
    name, _, arg = spec.strip().partition(":")
    if m := _ERROR.fullmatch(name):
        status = int(m.group(1))
        if not 400 <= status <= 599:
            raise FaultSpecError(f"{spec!r}: error status must be 4xx or 5xx")
        return Fault("error", status=status, probability=_probability(spec, arg))
    if name == "hang":
        return Fault("hang", probability=_probability(spec, arg))
    if name in _TOKEN_FAULTS:
        if not arg.isdigit() or int(arg) < 1:
            raise FaultSpecError(f"{spec!r}: expected {name}:N with N >= 1")
        return Fault(name, tokens=int(arg))
    if name in _FLAGS and not arg:
        return Fault(name)
    known = "errorNNN[:P], hang[:P], die-after-tokens:N, stall-after-tokens:N, " + ", ".join(_FLAGS)
    raise FaultSpecError(f"unknown fault {spec!r}; expected one of: {known}")


def _probability(spec: str, arg: str) -> float:
    if not arg:
        return 1.0
    try:
        p = float(arg)
    except ValueError:
        raise FaultSpecError(f"{spec!r}: probability must be a number") from None
    if not 0.0 <= p <= 1.0:
        raise FaultSpecError(f"{spec!r}: probability must be within [0, 1]")
    return p


@dataclass(frozen=True, slots=True)
class RequestFault:
    """What one generation request suffers, decided when it arrives."""

    status: int = 0
    hang: bool = False
    die_after: int = 0
    stall_after: int = 0

    @property
    def watches_tokens(self) -> bool:
        return bool(self.die_after or self.stall_after)


NO_FAULT = RequestFault()


class FaultInjector:
    def __init__(self, specs: Iterable[str] = (), seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self.faults: tuple[Fault, ...] = ()
        self.replace(specs)

    def replace(self, specs: Iterable[str]) -> None:
        """Parse every spec first, so a bad list leaves the current faults untouched."""
        self.faults = tuple(parse_fault(s) for s in specs)

    def describe(self) -> list[str]:
        return [str(f) for f in self.faults]

    def _has(self, name: str) -> bool:
        return any(f.name == name for f in self.faults)

    @property
    def metrics_down(self) -> bool:
        return self._has("metrics-down")

    @property
    def metrics_garbage(self) -> bool:
        return self._has("metrics-garbage")

    @property
    def metrics_hang(self) -> bool:
        return self._has("metrics-hang")

    def for_request(self) -> RequestFault:
        if not self.faults:
            return NO_FAULT
        status, hang, die, stall = 0, False, 0, 0
        for f in self.faults:
            if f.name == "error" and not status and self._rng.random() < f.probability:
                status = f.status
            elif f.name == "hang" and self._rng.random() < f.probability:
                hang = True
            elif f.name == "die-after-tokens":
                die = f.tokens
            elif f.name == "stall-after-tokens":
                stall = f.tokens
        return RequestFault(status, hang, die, stall)
