"""The simulated pods of `inference-gateway up`: one `inference-gateway simulate` process per pod
port, started, watched, and (when supervising) restarted with backoff after an exit.

An exit is reported at once (a log line, and the pod turns not ready, so the EPP and
`inference_pool_ready_pods` agree with what runs). `reconcile` starts and stops pods when the
LocalFleet changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from inference_gateway.local.children import dies_with_parent
from inference_gateway.local.fleet import LocalPod

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 30.0  # a pod up this long gets its backoff reset


@dataclass
class Child:
    pod: LocalPod
    port: int
    proc: asyncio.subprocess.Process
    healthy: bool = False
    backoff_s: float = 0.0
    restarts: int = 0
    started_at: float = 0.0

    @property
    def address(self) -> str:
        return f"{self.pod.pod.ip}:{self.port}"


class SimulatorProcesses:
    def __init__(self, restart: bool = False, on_change: Callable[[], None] | None = None) -> None:
        self.restart = restart
        self.on_change = on_change or (lambda: None)
        self.children: dict[str, Child] = {}  # by address, in start order
        self._watch: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def procs(self) -> list[asyncio.subprocess.Process]:
        return [c.proc for c in self.children.values()]

    def pod_ready(self, pod: LocalPod) -> bool:
        """All of the pod's ports answer and none has exited since."""
        mine = [self.children.get(a) for a in pod.addresses]
        return all(c is not None and c.healthy and c.proc.returncode is None for c in mine)

    async def start(self, pods: list[LocalPod]) -> None:
        loop = asyncio.get_running_loop()
        for lp in pods:
            for port in lp.ports:
                child = Child(lp, port, await _spawn(lp, port), started_at=loop.time())
                self.children[child.address] = child
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_exits(), name="pod-supervisor")

    async def wait_healthy(self, pods: list[LocalPod], timeout_s: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        pending = [self.children[a] for lp in pods for a in lp.addresses]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while pending:
                if loop.time() > deadline:
                    raise RuntimeError(
                        f"simulated pods not healthy after {timeout_s}s: {[c.address for c in pending]}"
                    )
                dead = [c for c in pending if c.proc.returncode is not None]
                if dead:
                    raise RuntimeError(
                        f"simulated pod {dead[0].address} exited with status {dead[0].proc.returncode}"
                    )
                for child in pending:
                    child.healthy = await _healthy(session, child.address)
                pending = [c for c in pending if not c.healthy]
                if pending:
                    await asyncio.sleep(0.1)
        self.on_change()

    async def reconcile(self, pods: list[LocalPod]) -> None:
        """Start pods that are new, stop pods that are gone (the LocalFleet changed)."""
        wanted = {a: lp for lp in pods for a in lp.addresses}
        gone = [c for a, c in self.children.items() if a not in wanted]
        for child in gone:
            log.info(
                "stopping simulated pod %s (%s): no longer in the LocalFleet",
                child.pod.pod.ref.name,
                child.address,
            )
            del self.children[child.address]
        await _terminate([c.proc for c in gone])
        new = [lp for lp in pods if any(a not in self.children for a in lp.addresses)]
        if new:
            for lp in new:
                log.info("starting simulated pod %s (%s)", lp.pod.ref.name, ", ".join(lp.addresses))
            await self.start(new)
            try:
                await self.wait_healthy(new)
            except RuntimeError as exc:
                log.error("%s", exc)
        if gone:
            self.on_change()

    async def _watch_exits(self) -> None:
        while not self._stopping:
            for child in list(self.children.values()):
                if child.proc.returncode is not None and child.healthy:
                    self._report_exit(child)
            await asyncio.sleep(0.1)

    def _report_exit(self, child: Child) -> None:
        child.healthy = False
        loop = asyncio.get_running_loop()
        if loop.time() - child.started_at > STABLE_AFTER_S:
            child.backoff_s = 0.0
        name, code = child.pod.pod.ref.name, child.proc.returncode
        if self.restart:
            child.backoff_s = min(max(child.backoff_s * 2, BACKOFF_START_S), BACKOFF_MAX_S)
            log.warning(
                "simulated pod %s (%s) exited with status %s; restarting in %.1f s",
                name, child.address, code, child.backoff_s,
            )  # fmt: skip
            task = asyncio.create_task(self._restart(child), name=f"restart:{child.address}")
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        else:
            log.warning("simulated pod %s (%s) exited with status %s", name, child.address, code)
        self.on_change()

    async def _restart(self, child: Child) -> None:
        await asyncio.sleep(child.backoff_s)
        if self._stopping or self.children.get(child.address) is not child:
            return
        child.proc = await _spawn(child.pod, child.port)
        child.restarts += 1
        child.started_at = asyncio.get_running_loop().time()
        try:
            await self.wait_healthy([child.pod])
            log.info(
                "simulated pod %s (%s) is back (restart %d)",
                child.pod.pod.ref.name,
                child.address,
                child.restarts,
            )
        except RuntimeError as exc:
            log.warning("%s", exc)
            if child.proc.returncode is None:
                return
            self._report_exit(child)  # and schedule the next try

    async def stop(self) -> None:
        self._stopping = True
        for task in [self._watch, *self._pending]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await _terminate(self.procs)


async def _spawn(lp: LocalPod, port: int) -> asyncio.subprocess.Process:
    s = lp.simulator
    args = [
        sys.executable,
        "-m",
        "inference_gateway.cli",
        "simulate",
        "--host",
        lp.pod.ip,
        "--port",
        str(port),
    ]
    args += ["--model", s.model, "--profile", s.profile, "--metrics-flavor", s.metrics_flavor]
    args += ["--time-scale", str(s.time_scale), "--pod-name", lp.pod.ref.name]
    for lora in s.loras:
        args += ["--lora", lora]
    args += s.extra_args
    return await asyncio.create_subprocess_exec(*dies_with_parent(args), stdin=asyncio.subprocess.DEVNULL)


async def _terminate(procs: list[asyncio.subprocess.Process]) -> None:
    for proc in procs:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _healthy(session: aiohttp.ClientSession, address: str) -> bool:
    try:
        async with session.get(f"http://{address}/health") as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False
