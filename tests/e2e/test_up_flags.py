"""Every `inference-gateway up` flag has the effect its help promises (one `up` run checks them all),
and the run never touches the demo's fixed ports."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference_gateway.local.stack import free_port
from tests.conftest import make_config_dir
from tests.e2e.test_up_command import alive, descendants
from tests.extproc.test_extproc_protocol import request_stream

pytestmark = pytest.mark.e2e

QUEUE_ONLY = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer}
  - {pluginRef: max-score-picker}
"""


def _wait_for(pattern: str, proc: subprocess.Popen[str], seen: list[str], timeout_s: float = 90) -> str:
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("up exited:\n" + "".join(seen))
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no {pattern!r} in:\n" + "".join(seen))


def _post(url: str, body: dict, headers: dict[str, str] | None = None) -> tuple[dict[str, str], dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return dict(resp.headers), json.loads(resp.read())


def _ext_proc_answers(port: int, credentials: grpc.ChannelCredentials | None) -> bool:
    target = f"localhost:{port}"
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    body = json.dumps({"model": "food-review", "prompt": "x"}).encode()
    try:
        stub = pb_grpc.ExternalProcessorStub(channel)
        responses = list(stub.Process(iter(request_stream("duplex", body)), timeout=10))
        return bool(responses)
    except grpc.RpcError:
        return False
    finally:
        channel.close()


def test_every_up_flag_takes_effect(tmp_path: Path) -> None:
    config = make_config_dir(tmp_path)
    (tmp_path / "queue-only.yaml").write_text(QUEUE_ONLY)
    ports = {flag: free_port() for flag in ("--port", "--epp-port", "--metrics-port", "--health-port")}
    args = [sys.executable, "-m", "inference_gateway.cli", "up", "--config", str(config)]
    for flag, port in ports.items():
        args += [flag, str(port)]
    args += ["--epp-config", str(tmp_path / "queue-only.yaml"), "--time-scale", "0.05", "--tls", "--keep"]
    args += ["--log-level", "warning"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "80"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seen: list[str] = []
    try:
        _wait_for("Ctrl-C to stop", proc, seen)
        banner = "".join(seen)
        # --port: the gateway answers there; the `try:` line is one line, runnable as printed.
        try_line = next(line for line in seen if "try: curl" in line)
        assert f"127.0.0.1:{ports['--port']}/v1/completions" in try_line and try_line.rstrip().endswith("}'")
        headers, answer = _post(
            f"http://127.0.0.1:{ports['--port']}/v1/completions",
            {"model": "food-review", "prompt": "hi", "max_tokens": 2},
            {"x-gateway-explain": "true"},
        )
        assert answer["choices"][0]["text"]
        # --epp-config: the only scorer in the decision is the configured one.
        decision = json.loads(headers["x-gateway-explain"])
        assert set(decision["profiles"][decision["primary"]]["weights"]) == {"queue-scorer"}
        # --metrics-port: Prometheus metrics (and the status page URL) there.
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['--metrics-port']}/metrics", timeout=5) as r:
            assert b"inference_pool_ready_pods" in r.read()
        assert f"127.0.0.1:{ports['--metrics-port']}/" in banner
        # --health-port: grpc.health.v1 there.
        with grpc.insecure_channel(f"127.0.0.1:{ports['--health-port']}") as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="liveness")
            )
            assert status.status == health_pb2.HealthCheckResponse.SERVING
        # --tls (+ --epp-port): the EPP talks mTLS only: a client certificate from the run's CA gets
        # in; no certificate, or no TLS, does not.
        log_line = next(line for line in seen if "log " in line and "envoy.log" in line)
        workdir = Path(re.search(r"log (\S+)/envoy\.log", log_line).group(1))  # type: ignore[union-attr]
        pki = workdir / "pki"
        ca = (pki / "ca.pem").read_bytes()
        good = grpc.ssl_channel_credentials(
            ca, (pki / "client.key").read_bytes(), (pki / "client.pem").read_bytes()
        )
        assert _ext_proc_answers(ports["--epp-port"], good)
        assert not _ext_proc_answers(ports["--epp-port"], grpc.ssl_channel_credentials(ca))
        assert not _ext_proc_answers(ports["--epp-port"], None)
        # --time-scale reaches every simulated pod.
        children = descendants(proc.pid)
        sims = [Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0") for p in children]
        sims = [c for c in sims if b"simulate" in c]
        assert len(sims) == 4 and all(c[c.index(b"--time-scale") + 1] == b"0.05" for c in sims)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        seen.append(out)
        assert proc.returncode == 0, "".join(seen)
        # --keep: the work dir (Envoy's config and log, the certificates) stays and is named.
        assert (workdir / "envoy.yaml").exists() and f"kept {workdir}" in out
        # --log-level warning: no INFO lines.
        assert " INFO " not in "".join(seen)
        deadline = time.monotonic() + 5
        while [p for p in children if alive(p)] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p for p in children if alive(p)] == []
        shutil.rmtree(workdir)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
