"""`inference-gateway up` as a user runs it: serves a request, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

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


def up_command(config: Path, port: int | None = None) -> list[str]:
    """`inference-gateway up` on free ports, the simulated pods 20x faster than real time."""
    args = [sys.executable, "-m", "inference_gateway.cli", "up", "--config", str(config)]
    args += ["--port", str(port or free_port())]
    for flag in ("--epp-port", "--metrics-port", "--health-port"):
        args += [flag, str(free_port())]
    return [*args, "--time-scale", "0.05", "--log-level", "warning"]


def test_up_serves_and_sigint_stops_every_child(tmp_path: Path) -> None:
    config = make_config_dir(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        up_command(config, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/completions"
        deadline = time.monotonic() + 60
        answer = None
        body = json.dumps({"model": "food-review", "prompt": "hello", "max_tokens": 3}).encode()
        while time.monotonic() < deadline and answer is None:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as resp:
                    assert resp.status == 200
                    answer = json.loads(resp.read())
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        assert answer is not None, "no answer from the gateway"
        assert answer["choices"][0]["text"]
        children = descendants(proc.pid)
        assert len(children) >= 5  # four simulated pods and Envoy
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out.decode()
        assert b"Traceback" not in out
        assert b"fork_posix" not in out and b"epoll" not in out.lower()  # no gRPC fork noise
        # The work dir (Envoy's config and log) goes away without --keep.
        workdir = re.search(rb"log (\S+)/envoy\.log", out)
        assert workdir is not None, out.decode()
        assert not Path(workdir.group(1).decode()).exists()
        time.sleep(0.2)
        assert [p for p in children if alive(p)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_children_die_even_when_up_is_killed(tmp_path: Path) -> None:
    config = make_config_dir(tmp_path)
    proc = subprocess.Popen(
        up_command(config),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while len(descendants(proc.pid)) < 5:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        children = descendants(proc.pid)
        proc.kill()  # no chance to clean up: the kernel must take the children down
        proc.wait()
        deadline = time.monotonic() + 10
        while [p for p in children if alive(p)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in children if alive(p)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_up_reports_envoy_dying_and_stops(tmp_path: Path) -> None:
    config = make_config_dir(tmp_path)
    proc = subprocess.Popen(
        up_command(config),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "Ctrl-C to stop" in line:
                break
        children = descendants(proc.pid)
        envoys = [p for p in children if b"envoy.yaml" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert envoys, "".join(seen)
        envoy = envoys[0]
        os.kill(envoy, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 2, out
        assert "Envoy exited with status -9" in out and "Traceback" not in out
        time.sleep(0.2)
        assert [p for p in children if alive(p)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
