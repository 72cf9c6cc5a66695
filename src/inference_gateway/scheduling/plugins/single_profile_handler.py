"""single-profile-handler: run the only profile once; it is primary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.scheduling.types import CycleState, ProfileResult, SchedulingRequest


class SingleProfileHandler:
    type_name = "single-profile-handler"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name

    def pick_profiles(
        self,
        state: CycleState,
        request: SchedulingRequest,
        profiles: Sequence[str],
        done: dict[str, ProfileResult],
    ) -> list[str]:
        return [] if done else [profiles[0]]

    def primary(self, results: dict[str, ProfileResult]) -> str:
        return next(iter(results))
