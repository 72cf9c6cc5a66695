"""`bench load` as a person uses it: progress while it runs, a table with units, results kept on
Ctrl-C, a clear stop against a dead target, and a plot."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from inference_gateway.cli import app
from inference_gateway.local.stack import free_port


@pytest.fixture
def backend() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inference_gateway.bench.instant",
            "--listen",
            f"127.0.0.1:{port}",
            "--tokens",
            "3",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait()


def test_table_with_units_rounded_json_and_plot(backend: str, tmp_path: Path) -> None:
    out, plot = tmp_path / "r.json", tmp_path / "r.png"
    args = ["bench", "load", "--url", backend, "--qps", "30", "--duration", "2.5", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert re.search(r"sent \d+  ok \d+  errors 0", result.output)  # the progress line
    assert "TTFT (ms)" in result.output and "end to end (s)" in result.output and "req/s" in result.output
    row = orjson.loads(out.read_bytes())
    assert row["ok"] == row["requests"] > 20 and row["units"]["ttft"] == "ms"
    floats = re.findall(rb"\d+\.(\d+)", out.read_bytes())
    assert floats and max(len(f) for f in floats) <= 3
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_dead_target_backs_off_and_stops_clearly() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    args = [
        "bench",
        "load",
        "--url",
        url,
        "--concurrency",
        "16",
        "--duration",
        "60",
        "--give-up-after",
        "1.5",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "refused connections" in result.output and url in result.output
    assert time.monotonic() - started < 15
    sent = int(re.findall(r"(\d+) requests in", result.output)[-1])
    assert sent < 400  # backoff, not tens of thousands of attempts


def test_ctrl_c_keeps_the_results(backend: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ["bench", "load", "--url", backend, "--qps", "20", "--duration", "120", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "inference_gateway.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if re.search(r"ok [1-9]", line):
                break
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, rest
        assert "interrupted" in rest and "TTFT (ms)" in rest
        row = orjson.loads(out.read_bytes())
        assert row["interrupted"] is True and row["ok"] > 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
