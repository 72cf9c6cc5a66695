"""docs/own-envoy.md, followed step by step: every bash block of the page runs in order (servers
in the background), with the demo's fixed ports and addresses swapped for free ones."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import yaml
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.local.stack import free_port
from tests.conftest import worker_index
from tests.extproc.test_extproc_protocol import request_stream

pytestmark = pytest.mark.e2e

DOC = Path(__file__).resolve().parents[2] / "docs" / "own-envoy.md"
SERVERS = ("inference-gateway simulate", "inference-gateway epp", "envoy ")


def doc_blocks(section: str | None = None) -> list[str]:
    text = DOC.read_text()
    if section is not None:
        text = text[text.index(section) :]
    else:
        text = text[: text.index("## mTLS")]
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def substitutions() -> dict[str, str]:
    subnet = 200 + worker_index()
    subs = {port: str(free_port()) for port in ("8081", "9002", "9003", "9090", "9901", "8000")}
    subs |= {"127.0.0.2": f"127.{subnet}.7.2", "127.0.0.3": f"127.{subnet}.7.3"}
    return subs


def localize(block: str, subs: dict[str, str]) -> str:
    return re.sub("|".join(re.escape(k) for k in subs), lambda m: subs[m.group(0)], block)


class Runner:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        bin_dir = str(Path(sys.executable).parent)
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        self.background: list[subprocess.Popen[bytes]] = []

    def run(self, block: str, timeout_s: float = 40) -> str:
        if block.startswith(SERVERS):
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {block.strip()}"],
                cwd=self.cwd,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            self.background.append(proc)
            return ""
        deadline = time.monotonic() + timeout_s
        while True:  # a step that talks to servers started just before retries until they are up
            done = subprocess.run(
                ["bash", "-e", "-c", block], cwd=self.cwd, env=self.env, capture_output=True
            )
            served = done.stdout.strip() and b'"error"' not in done.stdout
            if done.returncode == 0 and (served or "curl" not in block):
                return done.stdout.decode() + done.stderr.decode()
            assert "curl" in block, (block, done.stdout, done.stderr)
            died = [p for p in self.background if p.poll() is not None]
            assert not died, died[0].stderr.read().decode() if died[0].stderr else ""
            assert time.monotonic() < deadline, (block, done.stdout, done.stderr)
            time.sleep(0.3)

    def stop(self, procs: list[subprocess.Popen[bytes]] | None = None) -> None:
        for proc in procs if procs is not None else self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)


def test_own_envoy_doc_step_by_step(tmp_path: Path) -> None:
    subs = substitutions()
    runner = Runner(tmp_path)
    try:
        outputs = [runner.run(localize(block, subs)) for block in doc_blocks()]
        answer = json.loads(next(o for o in outputs if o.lstrip().startswith("{")))
        assert answer["choices"][0]["text"]
        assert outputs[-1].strip() == "1"  # the added pod reached Envoy through the EPP
        eds = yaml.safe_load((tmp_path / "envoy-setup" / "xds" / "eds.yaml").read_text())
        hosts = eds["resources"][0]["endpoints"][0]["lb_endpoints"]
        assert len(hosts) == 2

        # mTLS: the EPP and Envoy restarted with the certificates `envoy-config --tls` minted.
        runner.stop(runner.background[2:])
        del runner.background[2:]
        tls_blocks = [localize(b, subs) for b in doc_blocks("## mTLS")]
        for block in tls_blocks:
            runner.run(block)
        runner.run(localize(doc_blocks("## 5. Envoy")[0], subs))
        completion = localize(next(b for b in doc_blocks() if "/v1/completions" in b), subs)
        assert json.loads(runner.run(completion))["choices"]
        pki = tmp_path / "envoy-setup" / "pki"
        assert (pki / "epp" / "ca.crt").exists()
        no_cert = grpc.ssl_channel_credentials((pki / "ca.pem").read_bytes())
        with grpc.secure_channel(f"localhost:{subs['9002']}", no_cert) as channel:
            stub = pb_grpc.ExternalProcessorStub(channel)
            with pytest.raises(grpc.RpcError):
                list(stub.Process(iter(request_stream("duplex", b"{}")), timeout=5))
    finally:
        runner.stop()
