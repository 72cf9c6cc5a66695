"""Fault tests run small fleets (two pods unless a test needs more): stacks start faster."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from inference_gateway.local.stack import LocalStack
from tests.conftest import make_config_dir, start_stack


def fleet_edit(replicas: int = 2, failure_mode: str | None = None) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        if doc["kind"] == "LocalFleet":
            doc["spec"]["pods"][0]["replicas"] = replicas
        if doc["kind"] == "InferencePool" and failure_mode is not None:
            doc["spec"]["endpointPickerRef"]["failureMode"] = failure_mode

    return edit


async def small_stack(tmp: Path, replicas: int = 2, failure_mode: str | None = None, **kw: Any) -> LocalStack:
    return await start_stack(make_config_dir(tmp, fleet_edit(replicas, failure_mode)), **kw)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[LocalStack]:
    """Two simulated pods behind Envoy + EPP: one to break, one to fall back on."""
    stack = await small_stack(tmp_path)
    try:
        yield stack
    finally:
        await stack.stop()
