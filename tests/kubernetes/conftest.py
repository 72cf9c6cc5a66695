from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from inference_gateway.sources.kubernetes import ControllerOptions, ReflectorTimings
from tests.doubles.kube_apiserver import FakeKubeAPIServer

from .objects import NS

FAST = ReflectorTimings(watch_timeout_s=5, backoff_initial_s=0.05, backoff_max_s=0.5, missing_retry_s=0.3)


@pytest.fixture
def apiserver() -> Iterator[FakeKubeAPIServer]:
    with FakeKubeAPIServer(bookmark_interval_s=0.1) as server:
        yield server


@pytest.fixture
def api(apiserver: FakeKubeAPIServer) -> Iterator[k8s.ApiClient]:
    client = k8s.ApiClient(apiserver.configuration())
    yield client
    client.close()


def options(identity: str = "epp-0", **overrides: Any) -> ControllerOptions:
    base: dict[str, Any] = {
        "pool_name": "llm",
        "pool_namespace": NS,
        "identity": identity,
        "lease_duration_s": 1.0,
        "renew_deadline_s": 0.6,
        "retry_period_s": 0.1,
        "timings": FAST,
        "status_debounce_s": 0.01,
        "service_check_ttl_s": 0.0,
    }
    base.update(overrides)
    return ControllerOptions(**base)


async def eventually(check: Callable[[], Any], within: float = 5.0, what: str = "condition") -> Any:
    """Poll `check` until it returns a truthy value (the controller converges asynchronously)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value {result!r}")
        await asyncio.sleep(0.02)
