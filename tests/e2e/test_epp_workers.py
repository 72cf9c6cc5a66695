"""`inference-gateway epp --workers 2` through the real Envoy: one ext_proc port, two processes.

Several Envoys (one HTTP/2 connection each to the EPP) are spread over the workers by the
kernel; each worker counts its own requests on its own /metrics port (--metrics-port + i), which
tells which worker serves which Envoy. Killing one worker under load must not cut the streams
the other serves; the supervisor starts the dead one again, and its Envoy reconnects.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from inference_gateway.bench.instant import MODEL
from inference_gateway.bench.pool import pod_ips, pool_yaml
from inference_gateway.envoy.bootstrap import EnvoyConfig
from inference_gateway.envoy.process import EnvoyProcess
from inference_gateway.local.stack import free_port
from tests.conftest import worker_index

pytestmark = pytest.mark.e2e

TOKENS = 40  # streamed chunks per answer, ITL_MS apart: each stream lasts ~1 s
ITL_MS = 25
CHUNKS = TOKENS + 1  # the tokens, then the usage chunk
REQUEST_TOTAL = re.compile(r"^inference_objective_request_total\{[^}]*\} ([0-9.e+]+)$", re.M)
RUNNING = re.compile(r"^inference_objective_running_requests\{[^}]*\} ([0-9.e+-]+)$", re.M)


def consecutive_free_ports(count: int) -> int:
    for _ in range(50):
        base = free_port()
        if all(free_port_is(base + i) for i in range(1, count)):
            return base
    raise RuntimeError("no run of free ports")


def free_port_is(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Workers:
    proc: asyncio.subprocess.Process
    grpc_port: int
    metrics_base: int

    async def requests_served(self, index: int) -> float:
        url = f"http://127.0.0.1:{self.metrics_base + index}/metrics"
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            return sum(float(v) for v in REQUEST_TOTAL.findall(await r.text()))

    async def running(self, index: int) -> float:
        """Requests this worker routed and has not seen end (Envoy's access log tells it)."""
        url = f"http://127.0.0.1:{self.metrics_base + index}/metrics"
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            found = RUNNING.findall(await r.text())
        assert found, "no running-requests gauge: the worker routed nothing"
        return sum(float(v) for v in found)

    async def wait_serving(self, index: int, timeout_s: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            try:
                await self.requests_served(index)
                return
            except aiohttp.ClientError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)


def worker_pids(supervisor_pid: int) -> dict[int, int]:
    """{worker index: pid} of the supervisor's live workers, read from their environment."""
    found: dict[int, int] = {}
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != supervisor_pid:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
        except (OSError, ValueError):
            continue
        match = re.search(rb'INFERENCE_GATEWAY_EPP_WORKER=\{"index":(\d+)', env)
        if match:
            found[int(match.group(1))] = pid
    return found


@pytest.fixture
async def backend() -> AsyncIterator[list[str]]:
    port = free_port()
    ips = pod_ips(2, 200 + worker_index())
    args = [sys.executable, "-m", "inference_gateway.bench.instant", "--tokens", str(TOKENS)]
    args += ["--itl-ms", str(ITL_MS)]
    for ip in ips:
        args += ["--listen", f"{ip}:{port}"]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
    yield [f"{ip}:{port}" for ip in ips]
    proc.terminate()
    await proc.wait()


@pytest.fixture
async def workers(backend: list[str], tmp_path: Path) -> AsyncIterator[Workers]:
    ips = [a.split(":")[0] for a in backend]
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "pool.yaml").write_text(pool_yaml(ips, int(backend[0].split(":")[1])))
    grpc_port, health_port, metrics_base = free_port(), free_port(), consecutive_free_ports(2)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inference_gateway.cli", "epp", "--resources", str(resources),
        "--workers", "2", "--grpc-port", str(grpc_port), "--grpc-health-port", str(health_port),
        "--metrics-port", str(metrics_base), "--secure-serving=false", "--metrics-endpoint-auth=false",
    )  # fmt: skip
    running = Workers(proc, grpc_port, metrics_base)
    try:
        for index in (0, 1):
            await running.wait_serving(index)
        yield running
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
    assert not worker_pids(proc.pid)  # the supervisor stopped its workers


async def complete(url: str, stream: bool = True) -> tuple[int, int]:
    """(status, streamed chunks) of one completion through `url`."""
    body = {"model": MODEL, "prompt": "hello", "max_tokens": TOKENS, "stream": stream}
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/completions", json=body) as r:
        chunks = 0
        async for line in r.content:
            chunks += line.startswith(b"data: {")
        return r.status, chunks


async def start_envoy(workers: Workers, backend: list[str], workdir: Path) -> EnvoyProcess:
    envoy = EnvoyProcess(EnvoyConfig(listen_port=0, epp_port=workers.grpc_port, use_epp=True), workdir)
    await envoy.start(backend)
    return envoy


async def serving_worker(workers: Workers, envoy: EnvoyProcess) -> int:
    """Which worker routes this Envoy's requests (its one connection to the EPP)."""
    before = [await workers.requests_served(i) for i in (0, 1)]
    status, _ = await complete(f"http://127.0.0.1:{envoy.listen_port}", stream=False)
    assert status == 200
    after = [await workers.requests_served(i) for i in (0, 1)]
    grown = [i for i in (0, 1) if after[i] > before[i]]
    assert len(grown) == 1, (before, after)
    return grown[0]


async def envoys_on_both_workers(
    workers: Workers, backend: list[str], tmp_path: Path
) -> dict[int, EnvoyProcess]:
    """One Envoy per worker. The kernel picks a worker per connection: start Envoys until it
    has picked both (each new Envoy is a fresh connection)."""
    by_worker: dict[int, EnvoyProcess] = {}
    for attempt in range(12):
        envoy = await start_envoy(workers, backend, tmp_path / f"envoy-{attempt}")
        index = await serving_worker(workers, envoy)
        if index in by_worker:
            await envoy.stop()
            continue
        by_worker[index] = envoy
        if len(by_worker) == 2:
            return by_worker
    raise AssertionError("12 connections all went to one worker")


async def test_a_dead_worker_leaves_the_others_streams_and_is_started_again(
    workers: Workers, backend: list[str], tmp_path: Path
) -> None:
    envoys = await envoys_on_both_workers(workers, backend, tmp_path)
    try:
        pids = worker_pids(workers.proc.pid)
        assert set(pids) == {0, 1}
        url = {i: f"http://127.0.0.1:{e.listen_port}" for i, e in envoys.items()}
        survivors = [asyncio.create_task(complete(url[1])) for _ in range(8)]
        await asyncio.sleep(0.3)  # the streams are routed and flowing
        os.kill(pids[0], signal.SIGKILL)
        results = await asyncio.gather(*survivors)
        assert results == [(200, CHUNKS)] * 8  # worker 1's streams ran to their end
        # Their ends reached worker 1 (the access log rides Envoy's connection to it).
        deadline = asyncio.get_running_loop().time() + 5
        while await workers.running(1) != 0:
            assert asyncio.get_running_loop().time() < deadline, await workers.running(1)
            await asyncio.sleep(0.05)

        await workers.wait_serving(0)  # started again on the same ports
        restarted = worker_pids(workers.proc.pid)
        assert restarted[0] != pids[0] and restarted[1] == pids[1]
        # The Envoy whose connection died reconnects; whichever worker takes it answers.
        assert [await complete(url[0]) for _ in range(3)] == [(200, CHUNKS)] * 3
    finally:
        for envoy in envoys.values():
            await envoy.stop()
