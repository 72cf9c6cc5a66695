"""`inference-gateway epp --pool-name ...` as the Helm chart runs it, against the in-test API server.

The API server here is the project's in-test implementation of the Kubernetes list/watch HTTP
protocol; the EPP talks to it with the unmodified `kubernetes` client through a kubeconfig.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import orjson
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference_gateway.local.stack import free_port
from tests.doubles.kube_apiserver import FakeKubeAPIServer
from tests.extproc.test_extproc_protocol import request_stream

from . import objects as o


def health_status(port: int, service: str) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1).status
        except grpc.RpcError:
            return -1


def test_epp_command_serves_pool_from_kubernetes(apiserver: FakeKubeAPIServer, tmp_path: Path) -> None:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig", namespace=o.NS)
    apiserver.apply(o.pool())
    apiserver.apply(o.service("llm-epp"))
    apiserver.apply(o.model("chat", "chat"))
    for i in range(3):
        apiserver.apply(o.pod(f"vllm-{i}", f"10.9.0.{i + 1}"))
    grpc_port, health_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inference_gateway.cli",
            "epp",
            "--pool-name",
            "llm",
            "--pool-namespace",
            o.NS,
            "--kubeconfig",
            str(kubeconfig),
            "--host",
            "127.0.0.1",
            "--grpc-port",
            str(grpc_port),
            "--grpc-health-port",
            str(health_port),
            "--metrics-port",
            str(free_port()),
            "--ha-enable-leader-election",
            "--secure-serving=false",  # TLS by default; the default is covered through Envoy (tests/compat)
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "POD_NAME": "epp-test-0"},
    )
    try:
        deadline = time.monotonic() + 30
        while health_status(health_port, "readiness") != health_pb2.HealthCheckResponse.SERVING:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "EPP never became ready"
            time.sleep(0.1)
        assert health_status(health_port, "liveness") == health_pb2.HealthCheckResponse.SERVING

        body = orjson.dumps({"model": "chat", "prompt": "hello"})
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            responses = list(
                pb_grpc.ExternalProcessorStub(channel).Process(iter(request_stream("duplex", body)))
            )
        headers = {
            h.header.key: h.header.raw_value.decode()
            for h in responses[0].request_headers.response.header_mutation.set_headers
        }
        primary = headers["x-gateway-destination-endpoint"].split(",")[0]
        assert primary in {f"10.9.0.{i + 1}:8000" for i in range(3)}

        # The leader took the Lease, as the chart's HA mode expects.
        lease_name = f"epp-{o.NS}-llm.gateway-api-inference-extension.sigs.k8s.io"
        lease = apiserver.get("coordination.k8s.io/v1", "Lease", o.NS, lease_name)
        assert lease["spec"]["holderIdentity"] == "epp-test-0"

        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out.decode()
        assert b"Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
