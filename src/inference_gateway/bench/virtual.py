"""Virtual-time runs: the simulator's fleet with each routing policy, at each rate.

Every (policy, rate) is an independent job with fixed seeds, so the same workload (same
arrivals, lengths, prompts) meets every policy; jobs run in parallel worker processes.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from inference_gateway.bench.arrivals import arrival_times
from inference_gateway.bench.policies import PolicySpec, SamplingScheduler, make_policy
from inference_gateway.bench.scenario import ServerGroup
from inference_gateway.bench.slo import slo_summary
from inference_gateway.bench.stats import Outcomes, series_summary, summarize
from inference_gateway.bench.workloads import DEFAULT_MEDIA_RULE, BenchRequest, WorkloadSpec, generate
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet import run_fleet
from inference_gateway.simulator.fleet_server import FleetResult
from inference_gateway.simulator.fleet_types import SimRequest
from inference_gateway.simulator.gateway import VirtualGateway
from inference_gateway.simulator.pd_fleet import run_pd_fleet
from inference_gateway.simulator.tokenizer import SimTokenizer, block_hashes, encode_chat

MAX_GROUPS = 16  # per-group statistics only for a few groups (classes, adapters)


@dataclass
class VirtualJob:
    policy: str
    spec: PolicySpec
    qps: float
    workload: WorkloadSpec
    duration_s: float
    seed: int
    servers: int = 4
    server: dict[str, Any] = field(default_factory=dict)  # ServerConfig fields
    fleet: list[ServerGroup] = field(default_factory=list)  # a mixed fleet: replaces `servers`
    scrape_interval_s: float = 0.05
    staleness_s: float = 0.0
    sample_interval_s: float = 1.0
    with_text: bool = False  # give every request its prompt text (prefix-aware policies)
    base_dir: Path | None = None  # where relative policy config paths are resolved


def server_configs(job: VirtualJob) -> list[ServerConfig]:
    """The fleet's servers: `servers` alike, or each group of a mixed `fleet` in turn."""
    extra = dict(job.server)
    if job.workload.kind == "multi-lora":
        w = job.workload
        extra.setdefault("lora_adapters", [f"{w.adapter_prefix}{i}" for i in range(w.adapters)])
    extra.setdefault("served_model_name", job.workload.model)
    if not job.fleet:
        return [ServerConfig(name=f"sim-{i}", **{"seed": job.seed, **extra}) for i in range(job.servers)]
    configs: list[ServerConfig] = []
    for group in job.fleet:
        for i in range(group.count):
            fields = {"seed": job.seed * 1000 + len(configs), **extra, **group.server}
            configs.append(ServerConfig(name=f"{group.name}-{i}", **fields))
    return configs


def group_of_server(job: VirtualJob) -> list[str]:
    """The fleet group each server index belongs to (empty for a uniform fleet)."""
    return [group.name for group in job.fleet for _ in range(group.count)]


class _Prompts:
    """Prompt text and prefix-cache block hashes, cached for prompts that repeat."""

    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self.tokenizer = SimTokenizer()
        self.cache: dict[tuple[int, int], tuple[str, tuple[int, ...]]] = {}

    def of(self, r: BenchRequest) -> tuple[str, tuple[int, ...]]:
        key = (r.prefix_group, r.text_seed)
        hit = self.cache.get(key) if r.prefix_group >= 0 else None
        if hit is None:
            text = r.prompt()
            hit = (text, tuple(block_hashes(self.tokenizer.encode(text), self.block_size)))
            if r.prefix_group >= 0:
                self.cache[key] = hit
        return hit


def sim_requests(
    job: VirtualJob,
    groups: list[str],
    prefixes: list[int],
    tally: Counter[str] | None = None,
    models: list[str | None] | None = None,
) -> Iterator[SimRequest]:
    """The job's workload as fleet requests; appends each request's group label to `groups`,
    the length of its shared prefix (0: none) to `prefixes` and its adapter (None: the base
    model) to `models`, and counts the image/audio tokens sent in `tally["media_tokens"]`."""
    offsets = arrival_times("poisson", job.qps, job.duration_s, job.seed)
    requests = generate(job.workload, 10**12, job.seed)
    needs_text = job.with_text or job.workload.kind == "shared-prefix"
    prompts = _Prompts(int(job.server.get("block_size") or 16))
    # criticality class names are InferenceModels whose target is the base model
    base_names = {job.workload.model, *job.workload.class_models.values()}
    for t, r in zip(offsets, requests, strict=False):
        groups.append(r.group)
        prefixes.append(r.prefix_tokens if r.prefix_group >= 0 else 0)
        model = None if r.model in base_names else r.model
        if models is not None:
            models.append(model)
        if r.image >= 0:
            chat = _chat_request(r, model or job.workload.model, prompts)
            if tally is not None:
                tally["media_tokens"] += sum(span[2] for span in chat.media)
            chat.request_id, chat.arrival, chat.priority = r.index, t, r.priority
            chat.headers = r.headers or None
            yield chat
            continue
        text, hashes = prompts.of(r) if needs_text else (None, None)
        request = SimRequest(r.index, t, r.prompt_tokens, r.max_tokens, model, hashes, text, r.priority)
        request.headers = r.headers or None
        yield request


def _chat_request(r: BenchRequest, model: str, prompts: _Prompts) -> SimRequest:
    """A chat request with media: the body the EPP parses, the token ids, block hashes and
    media spans the simulated engine sees (simulator/tokenizer.encode_chat)."""
    messages = r.messages()
    ids, spans = encode_chat(messages, prompts.tokenizer, DEFAULT_MEDIA_RULE)
    body = orjson.dumps({"model": model, "messages": messages})
    hashes = block_hashes(ids, prompts.block_size)
    return SimRequest(r.index, 0.0, len(ids), r.max_tokens, block_hashes=hashes, media=spans, body=body)


def run_job(job: VirtualJob) -> dict[str, Any]:
    started = time.perf_counter()
    policy = make_policy(job.spec, job.seed, job.base_dir)
    sampler = SamplingScheduler(policy, job.sample_interval_s)
    groups: list[str] = []
    prefixes: list[int] = []
    tally: Counter[str] = Counter()
    models: list[str | None] = []
    configs = server_configs(job)
    run = run_pd_fleet if job.spec.roles else run_fleet
    result = run(
        sim_requests(job, groups, prefixes, tally, models),
        configs,
        sampler,
        scrape_interval=job.scrape_interval_s,
        staleness=job.staleness_s,
    )
    row = _row(job, result, groups)
    if job.workload.kind == "mixed-slo":
        row["slo"] = slo_summary(result.results, groups, job.workload.slo_classes)
    row["server"] = {**series_summary(sampler.series), **_engine_summary(result)}
    if tally["media_tokens"] or job.spec.roles:
        row["stages"] = _stage_summary(result, tally["media_tokens"])
    row["window_output_tps"] = _window_output_tps(result, job.duration_s)
    if job.fleet:
        row["fleet"] = _fleet_summary(job, result)
    if any(models):
        row["lora"] = adapter_summary(result, configs, models)
    if any(prefixes):
        row["prefix_prefills"] = _prefix_prefills(result, prefixes, int(job.server.get("block_size") or 16))
    if job.spec.kind == "epp":
        row["replicas"] = {"count": job.spec.replicas, "sync_delay_s": job.spec.sync_delay_s}
    if isinstance(policy, VirtualGateway) and policy.decisions:
        row["decision_us"] = 1e6 * policy.decision_seconds / policy.decisions
    row["wall_s"] = time.perf_counter() - started
    row["loadavg"] = os.getloadavg()[0]  # wall_s depends on the machine's load; virtual time does not
    row["series"] = _downsample(sampler.series, job.servers)
    return row


def _row(job: VirtualJob, result: FleetResult, groups: list[str]) -> dict[str, Any]:
    total = Outcomes()
    by_group: dict[str, Outcomes] = {}
    first, last = float("inf"), 0.0
    for r in result.results:
        label = groups[int(r.request_id)] if isinstance(r.request_id, int) else ""
        sinks = [total] + ([by_group.setdefault(label, Outcomes())] if label else [])
        for o in sinks:
            if r.status == "ok" and r.finish >= 0:
                o.statuses["200"] += 1
                o.add_ok(r.ttft, r.e2e, r.output_tokens, r.prompt_tokens)
            else:
                o.statuses[r.status] += 1
        first = min(first, r.arrival)
        last = max(last, r.finish)
    span = last - first if last > first else 0.0
    labels = dict(
        mode="virtual",
        policy=job.policy,
        qps=job.qps,
        seed=job.seed,
        duration_s=job.duration_s,
        servers=job.servers,
        workload=job.workload.kind,
    )
    row = summarize(total, span, **labels)
    row["incomplete"] = result.incomplete
    row["sim_time_s"] = result.sim_time
    if 1 < len(by_group) <= MAX_GROUPS:
        row["groups"] = {g: _group_stats(o, span) for g, o in sorted(by_group.items())}
    return row


def _window_output_tps(result: FleetResult, window_s: float) -> float:
    """Output tokens/s produced while requests were arriving (the first `window_s`), each
    request's tokens spread evenly from its first token to its last: on a mixed fleet the
    stragglers a slow server finishes afterwards do not stretch the denominator."""
    produced = 0.0
    for r in result.results:
        if r.first_token < 0 or r.first_token >= window_s:
            continue
        if r.finish <= window_s or r.finish <= r.first_token:
            produced += r.output_tokens
        else:
            produced += 1 + (r.output_tokens - 1) * (window_s - r.first_token) / (r.finish - r.first_token)
    return produced / window_s if window_s > 0 else 0.0


def _fleet_summary(job: VirtualJob, result: FleetResult) -> dict[str, dict[str, float]]:
    """Per fleet group: the share of requests routed to it and its servers' mean busy time."""
    names = group_of_server(job)
    routed = {name: 0 for name in names}
    for r in result.results:
        if 0 <= r.endpoint < len(names):
            routed[names[r.endpoint]] += 1
    sim = max(result.sim_time, 1e-9)
    out: dict[str, dict[str, float]] = {}
    for group in job.fleet:
        servers = [s for s, name in zip(result.servers, names, strict=True) if name == group.name]
        busy = [s.stats.busy_time / sim for s in servers]
        out[group.name] = {
            "routed_share": routed[group.name] / max(len(result.results), 1),
            "busy_mean": float(np.mean(busy)),
        }
    return out


def adapter_summary(
    result: FleetResult, configs: list[ServerConfig], models: list[str | None]
) -> dict[str, int]:
    """Requests for an adapter, those routed to a server that does not have it ("misrouted":
    vLLM answers them 404, unless it loads adapters on demand), and how many of those failed."""
    out = {"adapter_requests": 0, "misrouted": 0, "misrouted_errors": 0}
    for r in result.results:
        model = models[int(r.request_id)] if isinstance(r.request_id, int) else None
        if model is None:
            continue
        out["adapter_requests"] += 1
        if 0 <= r.endpoint < len(configs) and model not in configs[r.endpoint].lora_adapters:
            out["misrouted"] += 1
            out["misrouted_errors"] += r.status != "ok"
    return out


def _prefix_prefills(result: FleetResult, prefixes: list[int], block_size: int) -> int:
    """Completed requests with a shared prefix that found less than its full blocks cached."""
    count = 0
    for r in result.results:
        prefix = prefixes[int(r.request_id)] if isinstance(r.request_id, int) else 0
        full = prefix // block_size * block_size
        if full and r.status == "ok" and r.cached_tokens < full:
            count += 1
    return count


def _group_stats(o: Outcomes, span: float) -> dict[str, Any]:
    s = summarize(o, span)
    return {k: s[k] for k in ("requests", "ok", "errors", "throughput_rps", "ttft", "ntpot", "e2e")}


def _engine_summary(result: FleetResult) -> dict[str, float]:
    sim = max(result.sim_time, 1e-9)
    busy = [s.stats.busy_time / sim for s in result.servers]
    queries = sum(s.stats.prefix_queries for s in result.servers)
    hits = sum(s.stats.prefix_hits for s in result.servers)
    return {
        "busy_mean": float(np.mean(busy)),
        "preemptions": float(sum(s.stats.num_preemptions for s in result.servers)),
        "prefix_hit_rate": hits / queries if queries else 0.0,
        "lora_loads": float(sum(s.stats.lora_loads for s in result.servers)),
    }


def _stage_summary(result: FleetResult, media_tokens: int) -> dict[str, float]:
    """Where the work went: disaggregated shares, encoder work, transfers (P/D, E/P/D)."""
    done = [r for r in result.results if r.status == "ok" and r.finish >= 0]
    encoded = sum(s.stats.encoder_tokens for s in result.servers)
    out = {
        "completed": float(len(done)),
        "prefill_disaggregated": sum(r.prefill_endpoint >= 0 for r in done) / max(len(done), 1),
        "encode_disaggregated": sum(r.encode_endpoint >= 0 for r in done) / max(len(done), 1),
        "encoded_share": encoded / media_tokens if media_tokens else float("nan"),
    }
    return out | {k: float(v) for k, v in result.extra.items()}


def _downsample(series: list[dict[str, float]], servers: int, points: int = 120) -> list[list[float]]:
    """Fleet-mean [t, kv, waiting, running] at <= `points` instants, for plots."""
    if not series:
        return []
    arr = np.asarray([[s["t"], s["kv"], s["waiting"], s["running"]] for s in series])
    n = len(arr) // max(servers, 1)
    arr = arr[: n * servers].reshape(n, servers, 4).mean(axis=1)
    step = max(1, n // points)
    return [[round(float(v), 4) for v in row] for row in arr[::step]]


def run_virtual(
    jobs: list[VirtualJob],
    workers: int = 2,
    progress: Callable[[VirtualJob, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every job (in `workers` processes when > 1); rows in job order."""
    rows: dict[int, dict[str, Any]] = {}
    if workers <= 1:
        for i, job in enumerate(jobs):
            rows[i] = run_job(job)
            if progress:
                progress(job, rows[i])
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
            futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
            for fut in as_completed(futures):
                i = futures[fut]
                rows[i] = fut.result()
                if progress:
                    progress(jobs[i], rows[i])
    return [rows[i] for i in range(len(jobs))]
