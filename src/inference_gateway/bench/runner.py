"""Run a scenario's sections and write their rows as JSON lines under an output directory.

Layout: <out>/<scenario>/{virtual,realtime,overhead,sync,decisions,micro}.jsonl and epp-profile.txt.
A section that runs replaces its file; sections not run keep theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from inference_gateway.bench.scenario import Scenario

SECTIONS = ("virtual", "realtime", "overhead", "sync")


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for row in rows:
            f.write(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
    return path


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
    )


def run_virtual_section(scenario: Scenario, progress: Progress) -> list[dict[str, Any]]:
    from inference_gateway.bench.virtual import VirtualJob, run_virtual

    v = scenario.virtual
    assert v is not None
    jobs = [
        VirtualJob(
            policy=name,
            spec=scenario.policy(name),
            qps=qps,
            workload=scenario.workload,
            duration_s=v.duration_s,
            seed=seed,
            servers=v.servers,
            server=v.server,
            fleet=v.fleet,
            scrape_interval_s=v.scrape_interval_s,
            staleness_s=v.staleness_s,
            sample_interval_s=v.sample_interval_s,
            with_text=v.with_text,
            base_dir=scenario.base_dir,
        )
        for seed in scenario.seeds
        for qps in v.qps
        for name in v.policies
    ]
    task = progress.add_task(f"{scenario.name}: virtual", total=len(jobs))

    def done(job: VirtualJob, row: dict[str, Any]) -> None:
        progress.update(task, advance=1, description=f"{scenario.name}: virtual {job.policy} @ {job.qps:g}")

    return run_virtual(jobs, v.workers, done)


def run_realtime_section(scenario: Scenario, progress: Progress) -> list[dict[str, Any]]:
    from inference_gateway.bench.realtime import RealtimeOptions, RealtimePolicy, run_realtime

    r = scenario.realtime
    assert r is not None
    policies = []
    for name in r.policies:
        spec = scenario.policy(name)
        config = spec.config_text(scenario.base_dir)
        policies.append(RealtimePolicy(name, spec.kind == "epp", config, spec.peer))
    rows: list[dict[str, Any]] = []
    steps = len(policies) * len(r.qps)
    for seed in scenario.seeds:
        task = progress.add_task(f"{scenario.name}: realtime", total=steps)
        fractions: dict[str, float] = {}

        def step(label: str, fraction: float, task: TaskID = task, fractions: dict = fractions) -> None:
            fractions[label] = fraction
            progress.update(task, completed=sum(fractions.values()), description=f"realtime {label}")

        options = RealtimeOptions(
            stack_dir=scenario.resolve(r.stack),
            workload=scenario.workload,
            policies=policies,
            qps=r.qps,
            duration_s=r.duration_s,
            seed=seed,
            pods=r.pods,
            time_scale=r.time_scale,
            simulator_args=r.simulator_args,
            fleet=r.fleet,
        )
        rows += asyncio.run(run_realtime(options, step))
    return rows


def run_overhead_section(scenario: Scenario, progress: Progress, out: Path) -> list[dict[str, Any]]:
    from inference_gateway.bench.overhead import OverheadOptions, run_overhead
    from inference_gateway.bench.schedtime import decision_table
    from inference_gateway.local.event_loop import loop_runner

    o = scenario.overhead
    assert o is not None
    epp = scenario.policy(o.epp_policy).config_text(scenario.base_dir) if o.epp_policy else None
    options = OverheadOptions(
        qps=o.qps,
        duration_s=o.duration_s,
        repeats=o.repeats,
        pods=o.pods,
        prompt_tokens=o.prompt_tokens,
        large_prompt_bytes=o.large_prompt_bytes,
        large_qps=o.large_qps,
        large_duration_s=o.large_duration_s,
        profile_s=o.profile_s,
        epp_config=epp,
        itl_tokens=o.itl_tokens,
        itl_ms=o.itl_ms,
        itl_qps=o.itl_qps,
        itl_duration_s=o.duration_s,
        epp_processes=o.epp_processes,
        envoy_concurrency=o.envoy_concurrency,
    )
    if o.modes:
        options.modes = tuple(o.modes)
    rows_per_mode = len(o.qps) + bool(o.large_prompt_bytes) + bool(o.itl_tokens)
    modes = len(options.modes) + len(o.epp_processes)
    steps = modes * o.repeats * rows_per_mode + bool(o.profile_s)
    task = progress.add_task(f"{scenario.name}: overhead", total=steps)

    def step(label: str) -> None:
        progress.update(task, advance=1, description=f"{scenario.name}: {label}")

    # The in-process EPP (envoy+epp) on the event loop `inference-gateway epp` picks by default.
    rows, profile = loop_runner()(run_overhead(options, step))
    if profile:
        (out / "epp-profile.txt").write_text(profile)
    names = o.decision_policies or ["default"]
    profiles = {n: (scenario.policy(n).config_text(scenario.base_dir) if n in scenario.policies else None)
                for n in names}  # fmt: skip
    decisions = decision_table(profiles, tuple(o.decision_sizes), o.decision_iterations)
    write_rows(out / "decisions.jsonl", decisions)
    if o.micro_iterations:
        from inference_gateway.bench.micro import micro_rows

        write_rows(out / "micro.jsonl", micro_rows(o.micro_iterations))
    return rows


def run_sync_section(scenario: Scenario, progress: Progress) -> list[dict[str, Any]]:
    from inference_gateway.bench.sync_loopback import SyncBenchOptions, run_sync_bench

    s = scenario.sync
    assert s is not None
    task = progress.add_task(f"{scenario.name}: sync (loopback gRPC)", total=1)
    options = SyncBenchOptions(
        s.lag_samples, tuple(s.flush_intervals_s), s.throughput_updates, s.blocks_per_update
    )
    rows = asyncio.run(run_sync_bench(options))
    progress.update(task, advance=1)
    return rows


def run_scenario(scenario: Scenario, out_root: Path, only: set[str] | None = None) -> dict[str, Path]:
    """Run the selected sections; returns the files written."""
    out = out_root / scenario.name
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    with progress_bar() as progress:
        for section in SECTIONS:
            if getattr(scenario, section) is None or (only and section not in only):
                continue
            if section == "virtual":
                rows = run_virtual_section(scenario, progress)
            elif section == "realtime":
                rows = run_realtime_section(scenario, progress)
            elif section == "sync":
                rows = run_sync_section(scenario, progress)
            else:
                rows = run_overhead_section(scenario, progress, out)
            written[section] = write_rows(out / f"{section}.jsonl", rows)
    return written
