"""`inference-gateway up` as a user runs it: serves a request, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from inference_gateway.local.stack import free_port
from tests.conftest import make_config_dir

pytestmark = pytest.mark.e2e


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except OSError:
                continue
            todo.extend(kids - found)
            found |= kids
    return found


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def test_up_serves_and_sigint_stops_every_child(tmp_path: Path) -> None:
    config = make_config_dir(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inference_gateway.cli",
            "up",
            "--config",
            str(config),
            "--port",
            str(port),
            "--epp-port",
            str(free_port()),
            "--time-scale",
            "0.05",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/completions"
        deadline = time.monotonic() + 60
        resp = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                resp = httpx.post(
                    url, json={"model": "food-review", "prompt": "hello", "max_tokens": 3}, timeout=10
                )
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert resp is not None and resp.status_code == 200, resp.text if resp else "no answer"
        assert resp.json()["choices"][0]["text"]
        children = descendants(proc.pid)
        assert len(children) >= 5  # four simulated pods and Envoy
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out.decode()
        assert b"Traceback" not in out
        time.sleep(0.2)
        assert [p for p in children if alive(p)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
