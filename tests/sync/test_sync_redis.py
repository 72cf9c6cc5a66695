"""Prefix sync through a real redis-server on loopback (skipped without redis-server or the client)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from inference_gateway.local.stack import free_port
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.plugins.prefix_cache_scorer import PrefixCacheScorer
from inference_gateway.scheduling.prefix_sync import PrefixSync, PrefixSyncOptions, prefix_scorers

pytest.importorskip("redis")
REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


class RedisProcess:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def until(check: Callable[[], bool], within_s: float = 10.0, step_s: float = 0.005) -> float:
    start = time.perf_counter()
    for _ in range(int(within_s / step_s)):
        if check():
            return time.perf_counter() - start
        await asyncio.sleep(step_s)
    pytest.fail(f"condition not met within {within_s}s")


def replica(port: int, channel: str) -> tuple[PrefixSync, PrefixCacheScorer]:
    config = load_config()
    options = PrefixSyncOptions(redis_url=f"redis://127.0.0.1:{port}/0", redis_channel=channel)
    scorer = prefix_scorers(config.plugins)["prefix-cache-scorer"]
    return PrefixSync.for_plugins(config.plugins, options), scorer


async def test_replicas_share_updates_through_redis_and_survive_its_restart(
    redis_server: RedisProcess,
) -> None:
    (a, left), (b, right) = replica(redis_server.port, "t1"), replica(redis_server.port, "t1")
    (c, other) = replica(redis_server.port, "another-pool")
    for s in (a, b, c):
        await s.start()
    try:
        await until(lambda: all(s.connected_peers() for s in (a, b, c)))
        left.listeners[0]("10.9.0.1:8000", [1, 2, 3], None)
        await until(lambda: right.index.match([1, 2, 3]) == {"10.9.0.1:8000": 3})
        assert left.index.match([1]) == {}  # its own message came back and was skipped
        assert other.index.match([1]) == {}  # a different channel hears nothing
        assert a.hub.stats.published == 1 and b.hub.stats.published == 0

        redis_server.stop()
        redis_server.start()
        await until(lambda: all(s.connected_peers() for s in (a, b)) and b.hub.stats.applied == 1)
        for _ in range(200):  # the subscriber may reconnect after the publisher: say it again
            if right.index.match([7, 8]) == {"10.9.0.2:8000": 2}:
                break
            left.listeners[0]("10.9.0.2:8000", [7, 8], None)
            await asyncio.sleep(0.05)
        assert right.index.match([7, 8]) == {"10.9.0.2:8000": 2}
    finally:
        for s in (a, b, c):
            await s.stop()
