"""Drop-in replacement check: our EPP, default settings, started with the upstream Helm chart's
exact arguments, behind upstream's reference Envoy configuration (v1.5.0 test/testdata/envoy.yaml:
ORIGINAL_DST on the destination header, FULL_DUPLEX_STREAMED both ways, TLS to the EPP), serving
the unmodified `openai` client.

One stack for the module; the conformance scenarios that need this Envoy reuse it.
"""

from __future__ import annotations

import json
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.compat.stack import (
    CHART_CONFIG,
    LoopThread,
    apiserver_with,
    envoy_process,
    epp_process,
    reference_envoy,
    start_simulators,
)
from tests.kubernetes import objects as o

pytestmark = pytest.mark.e2e

POOL = "vllm-qwen3-32b"
BASE = "Qwen/Qwen3-32B"
HOSTS = ["127.0.0.41", "127.0.0.42"]


def chart_args(config_file: Path) -> list[str]:
    """What the inferencepool chart (v1.5.0, default values) puts in the EPP container's args,
    release name vllm-qwen3-32b in namespace `inference`; only the ports are added by the test."""
    return [
        "--pool-name",
        POOL,
        "--pool-namespace",
        o.NS,
        "--pool-group",
        "inference.networking.k8s.io",
        "--zap-encoder",
        "json",
        "--config-file",
        str(config_file),
        "--v",
        "1",
        "--tracing=false",
    ]


@pytest.fixture(scope="module")
def gateway() -> Iterator[dict[str, Any]]:
    loop = LoopThread()
    work = Path(tempfile.mkdtemp(prefix="compat-"))
    try:
        servers, port = start_simulators(loop, HOSTS, BASE, ["food-review-2", "runtime-adapter"])
        pool = o.pool(POOL, ports=(port,), epp=f"{POOL}-epp")
        pods = [o.pod(f"vllm-{i}", host) for i, host in enumerate(HOSTS)]
        rewrite = o.rewrite("food-review", "food-review", "food-review-2", pool_name=POOL)
        api = apiserver_with([pool, o.service(f"{POOL}-epp"), *pods, rewrite])
        kubeconfig = api.write_kubeconfig(work / "kubeconfig", namespace=o.NS)
        try:
            with epp_process(chart_args(CHART_CONFIG), kubeconfig, work / "epp.log") as epp:
                text, ports = reference_envoy(o.NS, epp["grpc"])
                with envoy_process(text, work, ports["READY_PORT"]):
                    base_url = f"http://127.0.0.1:{ports['LISTEN_PORT']}/v1"
                    yield {"base_url": base_url, "epp": epp, "api": api, "epp_log": work / "epp.log"}
        finally:
            api.stop()
            for server in servers:
                loop.run(server.stop())
    finally:
        loop.close()


def client(gateway: dict[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway["base_url"], api_key="unused", max_retries=0, timeout=30)


def test_completion_answers_with_the_requested_model_name(gateway: dict[str, Any]) -> None:
    completion = client(gateway).completions.create(model="food-review", prompt="The pizza was", max_tokens=5)
    assert completion.choices[0].text
    # The rewrite sent food-review-2 to the pod; the client sees the name it asked for.
    assert completion.model == "food-review"


def test_streamed_chat_passes_every_chunk_with_the_requested_model(gateway: dict[str, Any]) -> None:
    stream = client(gateway).chat.completions.create(
        model="food-review", messages=[{"role": "user", "content": "Hello"}], max_tokens=6, stream=True
    )
    chunks = list(stream)
    assert sum(bool(c.choices and c.choices[0].delta.content) for c in chunks) == 6
    assert {c.model for c in chunks} == {"food-review"}


def test_models_listing_without_a_body_is_routed(gateway: dict[str, Any]) -> None:
    ids = {m.id for m in client(gateway).models.list().data}
    assert {BASE, "food-review-2", "runtime-adapter"} <= ids


def test_adapter_no_resource_names_is_forwarded(gateway: dict[str, Any]) -> None:
    completion = client(gateway).completions.create(model="runtime-adapter", prompt="Hi", max_tokens=3)
    assert completion.model == "runtime-adapter" and completion.choices[0].text


def test_base_model_and_request_without_model(gateway: dict[str, Any]) -> None:
    chat = client(gateway).chat.completions.create(
        model=BASE, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    assert chat.model == BASE
    body = json.dumps({"prompt": "no model named", "max_tokens": 2}).encode()
    req = urllib.request.Request(
        f"{gateway['base_url']}/completions", data=body, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200 and json.loads(resp.read())["model"] == BASE


def test_epp_logs_json_lines_as_the_chart_asks(gateway: dict[str, Any]) -> None:
    """--zap-encoder json: every log line the EPP wrote so far is one JSON object; --v 1 logs at info."""
    lines = [line for line in gateway["epp_log"].read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    assert entries and all({"level", "ts", "logger", "msg"} <= set(e) for e in entries)
    assert any("EPP ext_proc listening" in e["msg"] for e in entries)
    assert not any(e["level"] == "debug" for e in entries)
