"""A gateway assembled the way upstream deploys one: the EPP started by its command line with
the Helm chart's arguments, fed by a (test) Kubernetes API server, behind a real Envoy.

Simulated model servers run in-process on their own event loop thread; the EPP and Envoy are
child processes. Everything listens on loopback, on free ports.
"""

from __future__ import annotations

import asyncio
import os
import socket
import string
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference_gateway.envoy.process import envoy_binary
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.server import SimulatedServer
from tests.doubles.kube_apiserver import FakeKubeAPIServer

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE_ENVOY = FIXTURES / "upstream-v1.5.0-envoy.yaml"
CHART_CONFIG = FIXTURES / "chart-default-plugins.yaml"
T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LoopThread:
    """An asyncio loop on a daemon thread, for async servers used by synchronous tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def start_simulators(
    loop: LoopThread, hosts: list[str], model: str, loras: list[str]
) -> tuple[list[SimulatedServer], int]:
    """One simulated vLLM per host, all on the same port (as pods share a targetPort)."""
    port = free_port(hosts[0])
    servers = []
    for i, host in enumerate(hosts):
        cfg = ServerConfig(
            served_model_name=model, lora_adapters=list(loras), max_loras=len(loras), time_scale=0.02, seed=i
        )
        server = SimulatedServer(cfg)
        loop.run(server.start(host, port))
        servers.append(server)
    return servers, port


def wait_for(
    check: Any,
    what: str,
    within: float = 30.0,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + within
    while not check():
        if proc is not None and proc.poll() is not None:
            out = log.read_text(errors="replace") if log is not None else ""
            raise AssertionError(f"{what}: process exited {proc.returncode}:\n{out[-4000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="inference-extension"), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@contextmanager
def epp_process(args: list[str], kubeconfig: Path, log: Path) -> Iterator[dict[str, Any]]:
    """`inference-gateway epp ARGS` with free ports appended, its output in `log`; yields ports
    and the process."""
    ports = {"grpc": free_port(), "health": free_port(), "metrics": free_port()}
    argv = [
        *args,
        "--grpc-port",
        str(ports["grpc"]),
        "--grpc-health-port",
        str(ports["health"]),
        "--metrics-port",
        str(ports["metrics"]),
    ]
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "POD_NAME": "epp-0"}
    env.pop("NAMESPACE", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "inference_gateway.cli", "epp", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for(lambda: _serving(ports["health"]), "the EPP to report SERVING", proc=proc, log=log)
        yield {**ports, "process": proc}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@contextmanager
def envoy_process(config_text: str, workdir: Path, ready_port: int) -> Iterator[subprocess.Popen[bytes]]:
    path = workdir / "envoy.yaml"
    path.write_text(config_text)
    proc = subprocess.Popen(
        [
            envoy_binary(),
            "-c",
            str(path),
            "--log-level",
            "warning",
            "--use-dynamic-base-id",
            "--concurrency",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: _ready(ready_port), "Envoy to be ready")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def reference_envoy(namespace: str, epp_port: int) -> tuple[str, dict[str, int]]:
    """Upstream's reference Envoy config on free loopback ports (see the fixture's header)."""
    ports = {"ADMIN_PORT": free_port(), "READY_PORT": free_port(), "LISTEN_PORT": free_port()}
    text = string.Template(REFERENCE_ENVOY.read_text()).safe_substitute(
        {**{k: str(v) for k, v in ports.items()}, "NAMESPACE": namespace, "EPP_PORT": str(epp_port)}
    )
    return text, ports


def apiserver_with(objects: list[dict[str, Any]]) -> FakeKubeAPIServer:
    server = FakeKubeAPIServer(bookmark_interval_s=0.2)
    server.start()
    for obj in objects:
        server.apply(obj)
    return server
