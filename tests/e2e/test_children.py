"""The gateway process runs gRPC, so it starts its children (simulated pods, Envoy) without fork():
gRPC's fork handlers would otherwise run while its threads are busy, and a child could abort
before exec (seen as "a simulator exited with status -6")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from inference_gateway.datastore.store import Datastore
from inference_gateway.observability.server import HealthServer
from tests.faults.conftest import small_stack

pytestmark = pytest.mark.e2e

_forks: list[int] = []
_watching = [False]


def _before_fork() -> None:
    if _watching[0]:
        _forks.append(os.getpid())


os.register_at_fork(before=_before_fork)  # runs for os.fork() and for any subprocess preexec_fn


async def test_stack_starts_children_without_fork_while_grpc_runs(tmp_path: Path) -> None:
    grpc_server = HealthServer(Datastore(), "127.0.0.1", 0)  # gRPC threads are up in this process
    await grpc_server.start()
    _watching[0] = True
    try:
        stack = await small_stack(tmp_path, replicas=1)
        try:
            assert stack.envoy is not None and stack.envoy.proc is not None
            assert len(stack.simulators.procs) == 1
            await stack.restart_epp()
        finally:
            await stack.stop()
    finally:
        _watching[0] = False
        await grpc_server.stop()
    assert _forks == []
