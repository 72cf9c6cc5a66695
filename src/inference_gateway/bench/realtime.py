"""Real-time runs through the whole stack: simulated pods, a real Envoy, and (or not) the EPP.

Baseline: Envoy round robin over the pods (what a Kubernetes Service gives). Candidate:
Envoy + EPP with a scheduling profile. Peer routers (bench/peers.py) get the same stack, Envoy
round robin left idle, and take the traffic themselves. Each policy gets fresh pods so no state carries over;
within a policy the rates run low to high, draining the pods between rates. The pods keep
their prefix caches from one rate to the next, so each rate draws its own traffic (seed + the
rate's index, `rate_seed`): a rate never finds its prompts cached by the rate before. While
the load runs, every pod's /metrics is sampled for KV-cache use, queue depth and running batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from prometheus_client.parser import text_string_to_metric_families

from inference_gateway.bench.peers import PeerRouterProcess, PeerRouterSpec, PeerWorker, launch_args
from inference_gateway.bench.scenario import ServerGroup
from inference_gateway.bench.stats import series_summary
from inference_gateway.bench.workloads import WorkloadSpec
from inference_gateway.datastore.endpoint import EndpointMetrics
from inference_gateway.local.stack import LocalStack, StackOptions, free_port
from inference_gateway.metrics.extract import metrics_from_page
from inference_gateway.metrics.mappings import mapping_for
from inference_gateway.simulator.profile import load_profile


@dataclass
class RealtimePolicy:
    name: str
    use_epp: bool
    epp_config: str | None = None
    router: PeerRouterSpec | None = None


@dataclass
class RealtimeOptions:
    stack_dir: Path
    workload: WorkloadSpec
    policies: list[RealtimePolicy]
    qps: list[float]
    duration_s: float = 60.0
    seed: int = 1
    pods: int | None = None  # override the LocalFleet's replica count
    time_scale: float = 1.0
    simulator_args: list[str] = field(default_factory=list)
    fleet: list[ServerGroup] = field(default_factory=list)  # pod groups replacing the stack's
    sample_interval_s: float = 0.5
    drain_timeout_s: float = 120.0
    subnet: int = 90


def prepare_stack_dir(
    options: RealtimeOptions, target: Path, kv_events: dict[str, str] | None = None
) -> Path:
    """Copy the stack's YAML with free ports, private loopback addresses and scenario edits.
    With `kv_events` (filled in: pod IP -> tcp endpoint), each pod publishes KV events on its own port."""
    shutil.copytree(options.stack_dir, target)
    port = free_port()
    for file in target.glob("*.y*ml"):
        docs = [d for d in yaml.safe_load_all(file.read_text()) if d]
        for doc in docs:
            _edit(doc, options, port)
            if kv_events is not None and doc.get("kind") == "LocalFleet":
                doc["spec"]["pods"] = _one_group_per_pod(doc["spec"]["pods"], kv_events)
        file.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return target


def _one_group_per_pod(groups: list[dict[str, Any]], kv_events: dict[str, str]) -> list[dict[str, Any]]:
    """vLLM binds its KV-event publisher to `tcp://*:PORT`: pods on one host need a port each."""
    split: list[dict[str, Any]] = []
    for group in groups:
        base = ipaddress.IPv4Address(group["addressBase"])
        for r in range(int(group["replicas"])):
            pod = copy.deepcopy(group)
            ip, port = str(base + r), free_port()
            pod.update(replicas=1, addressBase=ip, namePrefix=f"{group.get('namePrefix', group['pool'])}-{r}")
            config = {"enable_kv_cache_events": True, "publisher": "zmq", "endpoint": f"tcp://*:{port}"}
            sim = pod.setdefault("simulator", {})
            sim["args"] = [*sim.get("args", []), "--kv-events-config", json.dumps(config)]
            kv_events[ip] = f"tcp://{ip}:{port}"
            split.append(pod)
    return split


def _edit(doc: dict[str, Any], options: RealtimeOptions, port: int) -> None:
    if doc.get("kind") == "InferencePool":
        doc["spec"]["targetPorts"] = [{"number": port}]
    if doc.get("kind") != "LocalFleet":
        return
    for i, group in enumerate(doc["spec"]["pods"]):
        group["addressBase"] = f"127.{options.subnet}.{i + 1}.1"
        if options.pods is not None:
            group["replicas"] = options.pods
        sim = group.setdefault("simulator", {})
        sim["timeScale"] = options.time_scale
        sim["args"] = [*sim.get("args", []), *options.simulator_args]
        if options.workload.kind == "multi-lora":
            sim["loras"] = [f"{options.workload.adapter_prefix}{k}" for k in range(options.workload.adapters)]
    if options.fleet:
        first = doc["spec"]["pods"][0]
        doc["spec"]["pods"] = [
            _pod_group(first, g, f"127.{options.subnet}.{i + 1}.1") for i, g in enumerate(options.fleet)
        ]


def _pod_group(template: dict[str, Any], group: ServerGroup, address_base: str) -> dict[str, Any]:
    """One fleet group as a LocalFleet pod group: the stack's first group (as edited for the
    scenario) with its own count, profile, adapters and simulator options, which win over the
    scenario's `simulator_args` (scenario.REALTIME_SERVER_FIELDS)."""
    pod = copy.deepcopy(template)
    name = f"{template.get('namePrefix', template['pool'])}-{group.name}"
    pod.update(replicas=group.count, namePrefix=name, addressBase=address_base)
    sim = pod["simulator"]
    fields = dict(group.server)
    if "profile" in fields:
        sim["profile"] = fields.pop("profile")
    if "lora_adapters" in fields:
        sim["loras"] = list(fields.pop("lora_adapters"))
    sim["args"] += [str(a) for key, value in fields.items() for a in (f"--{key.replace('_', '-')}", value)]
    return pod


class PodSampler:
    """Samples every pod's engine gauges at a fixed interval while a run is in progress."""

    def __init__(self, addresses: list[str], interval_s: float) -> None:
        self.addresses = addresses
        self.interval_s = interval_s
        self.series: list[dict[str, float]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PodSampler:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        t0 = time.monotonic()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                t = time.monotonic() - t0
                for i, sample in enumerate(
                    await asyncio.gather(*(scrape(session, a) for a in self.addresses))
                ):
                    if sample:
                        self.series.append({"t": t, "pod": i, **sample})
                await asyncio.sleep(self.interval_s)


async def scrape(session: aiohttp.ClientSession, address: str) -> dict[str, float]:
    try:
        async with session.get(f"http://{address}/metrics") as resp:
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError):
        return {}
    m = metrics_from_page(text, mapping_for("vllm"), EndpointMetrics())
    return {"kv": m.kv_cache_usage, "waiting": float(m.waiting_queue), "running": float(m.running_requests)}


_COUNTERS = {
    "vllm:prefix_cache_queries_total": "prefix_queries",
    "vllm:prefix_cache_hits_total": "prefix_hits",
    "vllm:request_success_total": "finished",
}


async def pod_counters(addresses: list[str]) -> list[dict[str, float]]:
    """Each pod's own counters (prefix-cache tokens queried and hit, requests finished): what the
    pods saw, whichever router sent the traffic."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        pages = await asyncio.gather(*(_page(session, a) for a in addresses))
    counters = []
    for page in pages:
        totals = dict.fromkeys(_COUNTERS.values(), 0.0)
        for family in text_string_to_metric_families(page):
            for sample in family.samples:
                if sample.name in _COUNTERS:
                    totals[_COUNTERS[sample.name]] += sample.value
        counters.append(totals)
    return counters


async def _page(session: aiohttp.ClientSession, address: str) -> str:
    try:
        async with session.get(f"http://{address}/metrics") as resp:
            return await resp.text()
    except (aiohttp.ClientError, TimeoutError):
        return ""


def counter_deltas(before: list[dict[str, float]], after: list[dict[str, float]]) -> dict[str, Any]:
    """Pod prefix-cache hit rate (tokens) and requests finished per pod over one rate's run."""
    delta = [{k: a[k] - b[k] for k in a} for b, a in zip(before, after, strict=True)]
    queries = sum(d["prefix_queries"] for d in delta)
    hits = sum(d["prefix_hits"] for d in delta)
    return {
        "prefix_hit_rate": round(hits / queries, 4) if queries else None,
        "pod_finished": [int(d["finished"]) for d in delta],
    }


async def drain(addresses: list[str], timeout_s: float) -> None:
    """Wait until no pod has running or waiting requests."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while loop.time() < deadline:
            samples = await asyncio.gather(*(scrape(session, a) for a in addresses))
            if all(s.get("running", 0) + s.get("waiting", 0) == 0 for s in samples):
                return
            await asyncio.sleep(0.2)


async def run_policy(
    options: RealtimeOptions, policy: RealtimePolicy, progress: Callable[[str, float], None] | None = None
) -> list[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="ig-bench-rt-"))
    kv_events: dict[str, str] | None = {} if policy.router and policy.router.needs_kv_events else None
    config = prepare_stack_dir(options, workdir / "stack", kv_events)
    stack = LocalStack(
        StackOptions(
            config_dir=config,
            gateway_port=free_port(),
            epp_port=0,
            metrics_port=0,
            health_port=0,
            epp_config=policy.epp_config,
            use_epp=policy.use_epp,
        )
    )
    await stack.start()
    router: PeerRouterProcess | None = None
    rows: list[dict[str, Any]] = []
    try:
        addresses = [a for p in stack.pods for a in p.addresses]
        base_url = stack.base_url
        if policy.router is not None:
            router = await start_peer_router(policy.router, stack, kv_events or {}, options, workdir)
            base_url = router.base_url
        for index, qps in enumerate(options.qps):
            seed = rate_seed(options.seed, index)
            rows.append(await _run_rate(options, policy, base_url, addresses, qps, seed, progress))
            await drain(addresses, options.drain_timeout_s)
    finally:
        if router is not None:
            await router.stop()
        await stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def rate_seed(seed: int, index: int) -> int:
    """The traffic seed of a policy's `index`-th rate: deterministic, the same for every
    policy (each policy meets the same requests at a rate), different from one rate to the
    next (the pods' caches carry over between rates)."""
    return seed + index


async def start_peer_router(
    spec: PeerRouterSpec,
    stack: LocalStack,
    kv_events: dict[str, str],
    options: RealtimeOptions,
    workdir: Path,
) -> PeerRouterProcess:
    workers = [PeerWorker(f"http://{a}", kv_events.get(p.pod.ip)) for p in stack.pods for a in p.addresses]
    block_size = load_profile(stack.pods[0].simulator.profile).block_size
    port = free_port()
    argv = launch_args(spec, workers, port, free_port(), options.workload.model, block_size)
    router = PeerRouterProcess(argv, port, workdir / f"{spec.kind}.log")
    await router.start()
    return router


async def _run_rate(
    options: RealtimeOptions,
    policy: RealtimePolicy,
    base_url: str,
    addresses: list[str],
    qps: float,
    seed: int,
    progress: Callable[[str, float], None] | None,
) -> dict[str, Any]:
    label = f"{policy.name} @ {qps:g} QPS"
    if progress:
        progress(label, 0.0)
    before = await pod_counters(addresses)
    async with PodSampler(addresses, options.sample_interval_s) as sampler:
        row = await _client_process(options, policy, base_url, qps, seed)
    row.pop("e2e_s", None)
    row.update(counter_deltas(before, await pod_counters(addresses)))
    row.update(
        mode="realtime",
        policy=policy.name,
        seed=options.seed,  # the scenario's seed, as virtual rows (tables average over it)
        traffic_seed=seed,
        pods=len(addresses),
        time_scale=options.time_scale,
        workload=options.workload.kind,
        server=series_summary(sampler.series),
        loadavg=round(os.getloadavg()[0], 2),  # other work on the machine distorts timings
    )
    if policy.router is not None:
        row["router"] = f"{policy.router.kind} {policy.router.policy}"
    if options.workload.kind == "multi-lora":
        # Every request names an adapter; a pod without it answers 404 (the EPP, not strict
        # about models here, never does): each 404 is a request routed where it cannot be served.
        misrouted = int(row["errors"].get("404", 0))
        row["lora"] = {
            "adapter_requests": row["requests"],
            "misrouted": misrouted,
            "misrouted_errors": misrouted,
        }
    if progress:
        progress(label, 1.0)
    return row


async def _client_process(
    options: RealtimeOptions, policy: RealtimePolicy, base_url: str, qps: float, seed: int
) -> dict[str, Any]:
    """The load generator in its own process: the EPP shares this process's event loop."""
    workdir = Path(tempfile.mkdtemp(prefix="ig-bench-client-"))
    spec, out = workdir / "workload.json", workdir / "result.json"
    spec.write_text(options.workload.model_dump_json())
    # Without the EPP nothing maps InferenceModel names: clients would send the base model.
    w = options.workload
    rename = {} if policy.use_epp else {name: w.model for name in w.class_models.values()}
    args = [
        sys.executable, "-m", "inference_gateway.bench.client", "--url", base_url, "--qps", str(qps),
        "--duration", str(options.duration_s), "--workload", str(spec), "--seed", str(seed),
        "--rename", orjson.dumps(rename).decode(), "--out", str(out),
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(*args)
    try:
        if await proc.wait() != 0:
            raise RuntimeError(f"load client failed: {policy.name} at {qps} QPS")
        row: dict[str, Any] = orjson.loads(out.read_bytes())
        return row
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def run_realtime(
    options: RealtimeOptions, progress: Callable[[str, float], None] | None = None
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for policy in options.policies:
        rows += await run_policy(options, policy, progress)
    return rows
