"""`epp --workers N`: N Endpoint Picker processes behind one gRPC port, kept running by a supervisor.

Each worker is a whole EPP (its own resource source, scraper, director and flow control) bound to
the same ext_proc and health ports with SO_REUSEPORT: the kernel hands each new connection to one
worker, and every stream on a connection stays with that worker. Envoy opens one HTTP/2
connection per worker thread to the EPP, so a request's routing stream and its observer stream
(the response, observed off the critical path) reach the same worker, the one holding its
context. Connections, not requests, are spread: an Envoy with fewer threads than the EPP has
workers leaves some workers idle.

What the workers share: the resources (each reads the same source), the scraped metrics (each
scrapes the same model servers, so their views differ by at most one scrape interval), and the
prefix index (each worker is a prefix-sync peer of the others on a loopback port, the replicas'
gossip). Per worker: the in-flight ledger and flow control's queues and admission count the
requests that worker routes. Worker i serves /metrics on --metrics-port + i.

A worker that exits is started again after `restart_delay_s`; the others keep their streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, replace

import orjson

from inference_gateway.commands.epp import EPPCommand
from inference_gateway.local.children import dies_with_parent

log = logging.getLogger(__name__)

WORKER_ENV = "INFERENCE_GATEWAY_EPP_WORKER"
LOOPBACK_HOSTS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class WorkerSlot:
    """Which worker a process is, and where its siblings gossip prefix-index updates."""

    index: int
    count: int
    grpc_port: int
    sync_ports: tuple[int, ...]

    def to_env(self) -> str:
        return orjson.dumps(
            {"index": self.index, "count": self.count, "grpc_port": self.grpc_port, "sync": self.sync_ports}
        ).decode()

    @classmethod
    def from_env(cls, text: str | None) -> WorkerSlot | None:
        if not text:
            return None
        data = orjson.loads(text)
        return cls(int(data["index"]), int(data["count"]), int(data["grpc_port"]), tuple(data["sync"]))


def worker_command(cmd: EPPCommand, slot: WorkerSlot) -> EPPCommand:
    """The command one worker runs: shared ports, its own metrics port and prefix-sync port."""
    host = "127.0.0.1" if cmd.host in LOOPBACK_HOSTS else cmd.host
    siblings = tuple(f"{host}:{port}" for i, port in enumerate(slot.sync_ports) if i != slot.index)
    return replace(
        cmd,
        workers=slot.count,
        worker_index=slot.index,
        grpc_port=slot.grpc_port,
        metrics_port=cmd.metrics_port + slot.index if cmd.metrics_port else cmd.metrics_port,
        prefix_sync_port=slot.sync_ports[slot.index],
        prefix_sync_peers=(*cmd.prefix_sync_peers, *siblings),
    )


def plan_slots(cmd: EPPCommand) -> list[WorkerSlot]:
    """One slot per worker. Port 0 for ext_proc means one free port, shared by all workers."""
    from inference_gateway.local.stack import free_port

    grpc_port = cmd.grpc_port or free_port(cmd.host or "0.0.0.0")
    if cmd.prefix_sync_port:  # gossip with other replicas too: worker i on --prefix-sync-port + i
        sync = tuple(cmd.prefix_sync_port + i for i in range(cmd.workers))
    else:
        sync = tuple(free_port() for _ in range(cmd.workers))
    return [WorkerSlot(i, cmd.workers, grpc_port, sync) for i in range(cmd.workers)]


@dataclass
class WorkerSupervisor:
    """Starts the workers, starts again any that exits, and stops them all on SIGTERM/SIGINT."""

    argv: list[str]  # the `epp` flags, passed on to every worker
    slots: list[WorkerSlot]
    restart_delay_s: float = 1.0
    # A worker that exits this soon after its start, this many times in a row, stops the EPP:
    # it cannot start (a bad config, a port taken), and starting it again would loop forever.
    early_exit_s: float = 30.0
    max_early_exits: int = 3

    def __post_init__(self) -> None:
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.started_at: dict[int, float] = {}
        self.early_exits: dict[int, int] = {}
        self.restarts = 0
        self.stopping = asyncio.Event()

    async def _start(self, slot: WorkerSlot) -> None:
        env = {**os.environ, WORKER_ENV: slot.to_env()}
        argv = [sys.executable, "-m", "inference_gateway.cli", "epp", *self.argv]
        self.procs[slot.index] = await asyncio.create_subprocess_exec(*dies_with_parent(argv), env=env)
        self.started_at[slot.index] = time.monotonic()
        log.info("EPP worker %d/%d started (pid %d)", slot.index, slot.count, self.procs[slot.index].pid)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        for slot in self.slots:
            await self._start(slot)
        log.info("EPP: %d workers on ext_proc port %d", len(self.slots), self.slots[0].grpc_port)
        try:
            return await self._watch()
        finally:
            await self._stop_all()

    async def _watch(self) -> int:
        stop = asyncio.create_task(self.stopping.wait())
        waits = {i: asyncio.create_task(p.wait()) for i, p in self.procs.items()}
        try:
            while not self.stopping.is_set():
                await asyncio.wait([stop, *waits.values()], return_when=asyncio.FIRST_COMPLETED)
                for index, task in list(waits.items()):
                    if not task.done() or self.stopping.is_set():
                        continue
                    if not await self._restart(index, task.result()):
                        return 1
                    waits[index] = asyncio.create_task(self.procs[index].wait())
            return 0
        finally:
            for task in [stop, *waits.values()]:
                task.cancel()

    async def _restart(self, index: int, code: int) -> bool:
        lived = time.monotonic() - self.started_at[index]
        early = self.early_exits[index] = (
            self.early_exits.get(index, 0) + 1 if lived < self.early_exit_s else 0
        )
        if early >= self.max_early_exits:
            log.error(
                "EPP worker %d exited %d times right after starting (code %d); stopping", index, early, code
            )
            return False
        log.warning("EPP worker %d exited (code %d) after %.1f s; starting it again", index, code, lived)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), self.restart_delay_s)
        if self.stopping.is_set():
            return True
        self.restarts += 1
        await self._start(self.slots[index])
        return True

    async def _stop_all(self, grace_s: float = 15.0) -> None:
        running = [p for p in self.procs.values() if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)  # each worker drains its routed streams
        for proc in running:
            try:
                await asyncio.wait_for(proc.wait(), grace_s)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def supervise(argv: list[str], cmd: EPPCommand) -> int:
    return await WorkerSupervisor(list(argv), plan_slots(cmd)).run()
