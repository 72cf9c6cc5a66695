"""The overhead benchmark's out-of-process EPPs: `inference-gateway epp --workers N` as deployed.

Each runs with the harness's pool (a --resources folder), on its own ports, and is paused
(SIGSTOP) while other modes are measured so that its scraping does not load the machine; its CPU
time is read from /proc for the supervisor and its workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from inference_gateway.bench.instant import MODEL
from inference_gateway.local.stack import free_port

REQUEST_TOTAL = re.compile(r"^inference_objective_request_total\{[^}]*\} ([0-9.e+]+)$", re.M)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port_run(count: int) -> int:
    """The first of `count` consecutive free ports (worker i serves /metrics on base + i)."""
    for _ in range(100):
        base = free_port()
        if all(_is_free(base + i) for i in range(1, count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


@dataclass
class EppProcess:
    workers: int
    resources: Path
    workdir: Path
    event_loop: str = "auto"
    config_text: str | None = None
    proc: asyncio.subprocess.Process | None = None
    grpc_port: int = 0
    metrics_base: int = 0

    @property
    def label(self) -> str:
        suffix = "" if self.event_loop == "auto" else f"-{self.event_loop}"
        return f"envoy+epp-w{self.workers}{suffix}"

    async def start(self, timeout_s: float = 90.0) -> None:
        self.grpc_port, self.metrics_base = free_port(), free_port_run(self.workers)
        args = [
            sys.executable, "-m", "inference_gateway.cli", "epp", "--resources", str(self.resources),
            "--workers", str(self.workers), "--event-loop", self.event_loop, "--host", "127.0.0.1",
            "--grpc-port", str(self.grpc_port), "--grpc-health-port", "0",
            "--metrics-port", str(self.metrics_base), "--secure-serving=false",
            "--metrics-endpoint-auth=false", "--log-level", "warning",
        ]  # fmt: skip
        if self.config_text:
            config = self.workdir / f"{self.label}.yaml"
            config.write_text(self.config_text)
            args += ["--config-file", str(config)]
        log = (self.workdir / f"{self.label}.log").open("wb")
        self.proc = await asyncio.create_subprocess_exec(*args, stdout=log, stderr=log)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        for index in range(self.workers):
            while True:
                try:
                    await self.requests_served(index)
                    break
                except aiohttp.ClientError:
                    if self.proc.returncode is not None or loop.time() > deadline:
                        raise RuntimeError(f"{self.label} did not start; see {log.name}") from None
                    await asyncio.sleep(0.2)

    def pids(self) -> list[int]:
        if self.proc is None:
            return []
        return [self.proc.pid, *_children(self.proc.pid)]

    def cpu_s(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        for pid in self.pids():
            # A child may exit between listing and signalling (a short-lived helper process).
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    async def requests_served(self, index: int) -> float:
        url = f"http://127.0.0.1:{self.metrics_base + index}/metrics"
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            return sum(float(v) for v in REQUEST_TOTAL.findall(await r.text()))

    async def spread(self) -> list[float]:
        """Requests routed so far by each worker."""
        return [await self.requests_served(i) for i in range(self.workers)]

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def burst(base_url: str, requests: int = 64) -> None:
    """Many requests at once, each on its own connection, so every Envoy thread gets some."""
    body = {"model": MODEL, "prompt": "hello", "max_tokens": 1}
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            async with session.post(f"{base_url}/completions", json=body) as resp:
                await resp.read()

        await asyncio.gather(*(one() for _ in range(requests)))
