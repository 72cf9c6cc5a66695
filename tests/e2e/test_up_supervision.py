"""`up` supervises its simulated pods: an exit is reported and the pod turns not ready
(`inference_pool_ready_pods` follows), the pod restarts with backoff, and LocalFleet edits
start and stop pods live."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import yaml

from inference_gateway.local.stack import LocalStack
from tests.faults.conftest import small_stack

pytestmark = pytest.mark.e2e


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def ready_pods(stack: LocalStack) -> int:
    assert stack.epp is not None and stack.epp.metrics_server is not None
    url = f"http://127.0.0.1:{stack.epp.metrics_server.port}/metrics"
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        text = await r.text()
    line = next(x for x in text.splitlines() if x.startswith("inference_pool_ready_pods{"))
    return int(float(line.rsplit(" ", 1)[1]))


async def test_a_killed_pod_is_reported_not_ready_and_restarted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inference_gateway.local.supervisor")
    stack = await small_stack(tmp_path, restart_pods=True)
    try:
        assert await ready_pods(stack) == 2
        victim = stack.simulators.procs[0]
        os.kill(victim.pid, signal.SIGKILL)

        async def reported() -> bool:
            return any("exited with status -9; restarting" in r.getMessage() for r in caplog.records)

        await until(reported)
        assert await ready_pods(stack) == 1  # at once: the restart waits its backoff (0.5 s) first

        async def back() -> bool:
            return stack.simulators.procs[0].pid != victim.pid and await ready_pods(stack) == 2

        await until(back)
        assert any("is back (restart 1)" in r.getMessage() for r in caplog.records)
    finally:
        await stack.stop()


async def test_fleet_edits_start_and_stop_pods_live(tmp_path: Path) -> None:
    stack = await small_stack(tmp_path)
    fleet_file = stack.options.config_dir / "fleet.yaml"

    def set_replicas(n: int) -> None:
        docs = list(yaml.safe_load_all(fleet_file.read_text()))
        for doc in docs:
            if doc and doc.get("kind") == "LocalFleet":
                doc["spec"]["pods"][0]["replicas"] = n
        fleet_file.write_text(yaml.safe_dump_all(docs, sort_keys=False))

    def eds_addresses() -> set[str]:
        assert stack.envoy is not None
        eds = yaml.safe_load(Path(stack.envoy.config.eds_path).read_text())
        return {
            f"{e['endpoint']['address']['socket_address']['address']}:"
            f"{e['endpoint']['address']['socket_address']['port_value']}"
            for e in eds["resources"][0]["endpoints"][0]["lb_endpoints"]
        }

    try:
        first = list(stack.simulators.procs)
        set_replicas(3)

        async def three() -> bool:
            return await ready_pods(stack) == 3 and len(eds_addresses()) == 3

        await until(three)
        assert len(stack.simulators.procs) == 3 and stack.simulators.procs[:2] == first
        set_replicas(1)

        async def one() -> bool:
            return await ready_pods(stack) == 1 and len(eds_addresses()) == 1

        await until(one)
        await until(lambda: asyncio.sleep(0, all(p.returncode is not None for p in first[1:])))
    finally:
        await stack.stop()
