"""Data that flows through scheduling: the request, per-cycle state, results, explanations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from inference_gateway.api.types import Criticality
from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.explain import explain_profile


@dataclass(slots=True)
class TokenizedPrompt:
    """The prompt as the engine tokenizes it (a token-producer's answer)."""

    token_ids: list[int]
    has_media: bool = False  # images/audio: the engine's block hashes also key on them


@dataclass(slots=True)
class SchedulingRequest:
    request_id: str
    model: str
    target_model: str
    prompt: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    criticality: Criticality = Criticality.STANDARD
    priority: int = 0
    body_size: int = 0
    pool: str = ""
    cache_salt: str = ""
    messages: list[Any] | None = None  # chat messages, for scorers that render the chat template
    media_tokens: int = 0  # tokens the request's images and audio cost (inference_gateway.media)
    tokens: TokenizedPrompt | None = None  # set by a token-producer before scheduling

    @property
    def sheddable(self) -> bool:
        return self.priority < 0


class CycleState(dict[str, Any]):
    """Scratch space shared by the plugins of one scheduling cycle (e.g. prompt hashes)."""


@dataclass(slots=True)
class ScorerBreakdown:
    scorer: str
    weight: float
    scores: list[float]


@dataclass(slots=True)
class ProfileResult:
    profile: str
    candidates: Sequence[Endpoint]
    totals: list[float]
    picked: list[Endpoint]
    breakdown: list[ScorerBreakdown] = field(default_factory=list)
    filtered_out: dict[str, list[str]] = field(default_factory=dict)

    picker: str = ""

    def explain(self, limit: int = 10) -> dict[str, Any]:
        return explain_profile(self, limit)


@dataclass(slots=True)
class SchedulingResult:
    primary_profile: str
    profiles: dict[str, ProfileResult]

    @property
    def endpoints(self) -> list[Endpoint]:
        return self.profiles[self.primary_profile].picked

    def explain(self) -> dict[str, Any]:
        return {
            "primary": self.primary_profile,
            "profiles": {k: v.explain() for k, v in self.profiles.items()},
        }


class SchedulingError(Exception):
    """No endpoint could be picked; carries the HTTP status the client should see."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
