"""Gateway overhead: latency the EPP adds over Envoy's own round robin, with an instant backend.

Four paths to the same instant backend pods, at each rate:
  backend     client -> backend                      (the floor: client + backend cost)
  envoy       client -> Envoy round robin -> backend (what a Kubernetes Service adds)
  envoy+noop  client -> Envoy -> do-nothing ext_proc -> backend (gRPC + protocol floor)
  envoy+noop-sync  the same, the no-op on grpc's synchronous thread-pool server (optional)
  envoy+noop-observe  the no-op with responses observed per request (response phases "observe")
  envoy+epp   client -> Envoy -> ext_proc EPP -> backend (responses by access log, the default)
  envoy+epp-observe  the same, responses on an observability-mode ext_proc stream (optional)
  envoy+epp-wN  the same, the EPP run as `inference-gateway epp --workers N` (epp_processes)
added = envoy+epp - envoy, at p50 and p99. The client runs in its own process; the EPP runs
in this process (so it can be profiled); Envoy, the backend, the no-op servers and the
--workers EPPs are separate processes. Every Python process runs on the EPP's default event
loop (uvloop when installed).
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from inference_gateway.bench.client import run_fixed_rate
from inference_gateway.bench.epp_process import EppProcess, burst, cpu_seconds
from inference_gateway.bench.overhead_modes import MODES, NOOP_SERVERS, envoy_config
from inference_gateway.bench.pool import pod_ips, pool_resources, pool_yaml
from inference_gateway.envoy.process import EnvoyProcess
from inference_gateway.epp import EndpointPicker, EPPOptions
from inference_gateway.local.stack import free_port

log = logging.getLogger(__name__)

# Where each request's CPU goes, per mode: the ext_proc server (EPP or no-op; 0 for Envoy alone),
# Envoy, the load generator and the instant backend, all on the same machine.
CPU_PARTS = ("gateway", "envoy", "client", "backend")


@dataclass
class OverheadOptions:
    qps: list[float] = field(default_factory=lambda: [1, 10, 100, 250, 500, 1000])
    duration_s: float = 10.0
    pods: int = 4
    prompt_tokens: int = 64
    large_prompt_bytes: int = 220_000
    large_qps: float = 5.0
    large_duration_s: float = 10.0
    stream: bool = True
    profile_s: float = 5.0  # cProfile the EPP at the highest rate for this long; 0 = skip
    epp_config: str | None = None
    subnet: int = 60
    client_process: bool = True  # False: run the client on this loop (smoke tests only)
    modes: tuple[str, ...] = MODES
    repeats: int = 3  # interleaved runs per mode and rate; rows keep the medians
    # Streaming: one run at itl_qps with itl_tokens tokens itl_ms apart (0 tokens = skip).
    itl_tokens: int = 0
    itl_ms: float = 5.0
    itl_qps: float = 50.0
    itl_duration_s: float = 5.0
    # EPPs as their own processes: "N" (N workers, default event loop) or "N:asyncio"/"N:uvloop".
    epp_processes: list[str] = field(default_factory=list)
    # Envoy's worker threads: each opens its own connection to an EPP, and an EPP's workers are
    # spread connections, so the Envoy in front of `--workers N` gets max(this, N) threads.
    envoy_concurrency: int = 1
    spread_tries: int = 12  # Envoy restarts until every worker of an EPP holds a connection


@dataclass
class OverheadHarness:
    options: OverheadOptions
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ig-overhead-")))
    backend: asyncio.subprocess.Process | None = None
    epp: EndpointPicker | None = None
    noops: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)  # by mode
    envoys: dict[str, EnvoyProcess] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    idle_cpu_per_s: float = 0.0  # this process's CPU use with no traffic (metric scrapes)
    epps: dict[str, EppProcess] = field(default_factory=dict)
    epp_idle_cpu_per_s: dict[str, float] = field(default_factory=dict)
    addresses: list[str] = field(default_factory=list)  # the backend pods
    burst_spreads: dict[str, list[float]] = field(default_factory=dict)  # the last spread check

    @property
    def modes(self) -> tuple[str, ...]:
        return (*self.options.modes, *self.epps)

    async def start(self) -> None:
        port = free_port()
        ips = pod_ips(self.options.pods, self.options.subnet)
        args = [sys.executable, "-m", "inference_gateway.bench.instant"]
        if self.options.itl_tokens:
            args += ["--tokens", str(self.options.itl_tokens), "--itl-ms", str(self.options.itl_ms)]
        for ip in ips:
            args += ["--listen", f"{ip}:{port}"]
        self.backend = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
        assert self.backend.stdout is not None
        line = await asyncio.wait_for(self.backend.stdout.readline(), 15)
        if line.strip() != b"ready":
            raise RuntimeError("instant backend did not start")
        self.urls["backend"] = f"http://{ips[0]}:{port}/v1"
        self.epp = EndpointPicker(
            EPPOptions(grpc_port=0, metrics_port=None, health_port=None, config_text=self.options.epp_config)
        )
        self.epp.store.replace_all(pool_resources(ips, port))
        self.epp.store.synced = True
        await self.epp.start()
        await self.epp.scraper.scrape_once()
        addresses = self.addresses = [f"{ip}:{port}" for ip in ips]
        ext_proc_ports = {"envoy": 0, "envoy+epp": self.epp.port}
        for mode in self.options.modes:
            if mode in NOOP_SERVERS:
                ext_proc_ports[mode] = await self._start_noop(mode, addresses)
        ext_proc_ports["envoy+epp-send"] = ext_proc_ports["envoy+epp-observe"] = self.epp.port
        await self._start_epp_processes(ips, port)
        ext_proc_ports.update({mode: epp.grpc_port for mode, epp in self.epps.items()})
        for mode in self.modes:
            if mode != "backend":
                await self._start_envoy(mode, ext_proc_ports[mode], addresses)

    async def _start_noop(self, mode: str, addresses: list[str]) -> int:
        args = [sys.executable, "-m", "inference_gateway.bench.noop_extproc", "--server", NOOP_SERVERS[mode]]
        noop = self.noops[mode] = await asyncio.create_subprocess_exec(
            *args, *addresses, stdout=asyncio.subprocess.PIPE
        )
        assert noop.stdout is not None
        line = (await asyncio.wait_for(noop.stdout.readline(), 30)).split()
        if line[:1] != [b"ready"]:
            raise RuntimeError("the no-op ext_proc server did not start")
        return int(line[1])

    async def _start_epp_processes(self, ips: list[str], port: int) -> None:
        resources = self.workdir / "resources"
        resources.mkdir(exist_ok=True)
        (resources / "pool.yaml").write_text(pool_yaml(ips, port))
        for spec in self.options.epp_processes:
            workers, _, loop = spec.partition(":")
            epp = EppProcess(int(workers), resources, self.workdir, loop or "auto", self.options.epp_config)
            await epp.start()
            epp.pause()
            self.epps[epp.label] = epp

    async def _start_envoy(self, mode: str, ext_proc_port: int, addresses: list[str]) -> None:
        epp = self.epps.get(mode)
        concurrency = max(self.options.envoy_concurrency, epp.workers if epp else 1)
        workdir = self.workdir / mode.replace("+", "-")
        envoy = EnvoyProcess(envoy_config(mode, ext_proc_port), workdir, concurrency=concurrency)
        await envoy.start(addresses)
        self.envoys[mode] = envoy
        self.urls[mode] = f"http://127.0.0.1:{envoy.listen_port}/v1"

    async def spread_connections(self) -> None:
        """Restart each --workers EPP's Envoy until every worker routes some of a burst's requests
        (the kernel assigns Envoy's connections to workers at random). How a measured run spreads
        depends on which of Envoy's threads its client connections reach: rows record it."""
        for mode, epp in self.epps.items():
            for _ in range(self.options.spread_tries):
                epp.resume()
                try:
                    before = await epp.spread()
                    await burst(self.urls[mode])
                    after = await epp.spread()
                finally:
                    epp.pause()
                self.burst_spreads[mode] = [a - b for a, b in zip(after, before, strict=True)]
                if all(self.burst_spreads[mode]):
                    break
                await self.envoys[mode].stop()
                await self._start_envoy(mode, epp.grpc_port, self.addresses)

    async def stop(self) -> None:
        for envoy in self.envoys.values():
            await envoy.stop()
        for epp in self.epps.values():
            await epp.stop()
        if self.epp is not None:
            await self.epp.stop()
        for proc in (*self.noops.values(), self.backend):
            if proc is not None and proc.returncode is None:
                proc.terminate()
                await proc.wait()

    async def client(
        self, mode: str, qps: float, duration_s: float, prompt_bytes: int = 0, max_tokens: int = 1
    ) -> dict[str, Any]:
        """One client process at `qps` against `mode`; returns its summary row."""
        epp = self.epps.get(mode)
        if epp is not None:
            epp.resume()
            await asyncio.sleep(0.3)  # a fresh scrape after the pause
        try:
            before = await epp.spread() if epp else []
            row = await self._client(mode, qps, duration_s, prompt_bytes, max_tokens, epp)
            if epp is not None:  # requests each worker routed in this run
                row["worker_spread"] = [a - b for a, b in zip(await epp.spread(), before, strict=True)]
                row["burst_spread"] = self.burst_spreads.get(mode)
        finally:
            if epp is not None:
                epp.pause()
        row["mode"] = mode
        return row

    async def _client(
        self, mode: str, qps: float, duration_s: float, prompt_bytes: int, max_tokens: int,
        epp: EppProcess | None,
    ) -> dict[str, Any]:  # fmt: skip
        if not self.options.client_process:
            return await run_fixed_rate(
                self.urls[mode], qps, duration_s, self.options.prompt_tokens, prompt_bytes,
                max_tokens, stream=self.options.stream,
            )  # fmt: skip
        out = self.workdir / f"client-{mode.replace('+', '-')}-{qps}.json"
        args = [
            sys.executable, "-m", "inference_gateway.bench.client",
            "--url", self.urls[mode], "--qps", str(qps), "--duration", str(duration_s),
            "--prompt-tokens", str(self.options.prompt_tokens), "--out", str(out),
            "--max-tokens", str(max_tokens),
        ]  # fmt: skip
        if prompt_bytes:
            args += ["--prompt-bytes", str(prompt_bytes)]
        if not self.options.stream:
            args.append("--no-stream")
        cpu_now, idle = self._gateway_cpu(mode, epp)
        others = self._other_pids(mode)  # Envoy and the backend: the rest of the machine's budget
        others_before = {name: cpu_seconds(pid) for name, pid in others.items()}
        cpu, wall = cpu_now(), time.monotonic()
        proc = await asyncio.create_subprocess_exec(*args)
        if (code := await proc.wait()) != 0:
            raise RuntimeError(f"load client failed against {mode} at {qps} QPS (exit status {code})")
        cpu = cpu_now() - cpu - idle * (time.monotonic() - wall)
        row: dict[str, Any] = orjson.loads(out.read_bytes())
        requests = max(row["requests"], 1)
        row["gateway_cpu_ms_per_request"] = max(0.0, 1e3 * cpu / requests)
        for name, pid in others.items():
            row[f"{name}_cpu_ms_per_request"] = 1e3 * (cpu_seconds(pid) - others_before[name]) / requests
        row["client_cpu_ms_per_request"] = 1e3 * row.get("client_cpu_s", 0.0) / requests
        return row

    def _gateway_cpu(self, mode: str, epp: EppProcess | None) -> tuple[Callable[[], float], float]:
        """The ext_proc server's CPU clock for `mode`, and its idle CPU per second to subtract."""
        if epp is not None:
            return epp.cpu_s, self.epp_idle_cpu_per_s.get(mode, 0.0)
        if mode in self.noops:
            pid = self.noops[mode].pid
            return lambda: cpu_seconds(pid), 0.0  # it does nothing between requests
        # this process hosts the in-process EPP: its CPU per request is the EPP's
        return time.process_time, self.idle_cpu_per_s

    def _other_pids(self, mode: str) -> dict[str, int]:
        pids = {}
        envoy = self.envoys.get(mode)
        if envoy is not None and envoy.proc is not None:
            pids["envoy"] = envoy.proc.pid
        if self.backend is not None:
            pids["backend"] = self.backend.pid
        return pids

    async def measure_idle_cpu(self, seconds: float = 3.0) -> None:
        await asyncio.sleep(1.0)  # let the warm-up's last requests finish
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        self.idle_cpu_per_s = (time.process_time() - cpu) / (time.monotonic() - wall)
        for mode, epp in self.epps.items():
            epp.resume()
            cpu, wall = epp.cpu_s(), time.monotonic()
            await asyncio.sleep(seconds)
            self.epp_idle_cpu_per_s[mode] = (epp.cpu_s() - cpu) / (time.monotonic() - wall)
            epp.pause()

    async def profile_epp(self, qps: float, duration_s: float) -> str:
        """cProfile this process (the EPP) while the client drives envoy+epp; top functions."""
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            await self.client("envoy+epp", qps, duration_s)
        finally:
            profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        return text.getvalue()


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def _median_of(rows: list[dict[str, Any]], key: str) -> float:
    return _median([r.get(key) or 0.0 for r in rows])


def overhead_row(qps: float, runs: dict[str, list[dict[str, Any]]], metric: str = "e2e") -> dict[str, Any]:
    """One table row: per mode, the median over repeated runs of p50/p99 `metric` (e2e latency,
    or itl: inter-token latency of streamed answers); what the EPP adds.

    Other processes on a small machine inflate single runs; the median of a few interleaved
    runs is steadier. The 1-minute load average is kept with the row.
    """
    out: dict[str, Any] = {
        "kind": "overhead",
        "qps": qps,
        "loadavg": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count(),
    }
    for mode, rows in runs.items():
        out[mode] = {
            "p50_ms": _median([r[metric]["p50"] for r in rows]),
            "p99_ms": _median([r[metric]["p99"] for r in rows]),
            "p50_runs_ms": [round(r[metric]["p50"], 3) for r in rows],
            "achieved_qps": _median([r["achieved_qps"] for r in rows]),
            "throughput_rps": _median([r["throughput_rps"] for r in rows]),
            "errors": dict(sum((Counter(r["errors"]) for r in rows), Counter())),
            "client_lag_p99_ms": _median([r.get("client_lag", {}).get("p99") or 0.0 for r in rows]),
            **{f"{p}_cpu_ms_per_request": _median_of(rows, f"{p}_cpu_ms_per_request") for p in CPU_PARTS},
        }
    for mode in runs:
        if mode not in ("backend", "envoy") and "envoy" in out:
            for pct in ("p50", "p99"):
                out[mode][f"added_{pct}_ms"] = out[mode][f"{pct}_ms"] - out["envoy"][f"{pct}_ms"]
        spreads = [r["worker_spread"] for r in runs[mode] if "worker_spread" in r]
        if spreads:  # requests per worker, all repeats together
            out[mode]["worker_spread"] = [sum(column) for column in zip(*spreads, strict=True)]
            out[mode]["burst_spread"] = runs[mode][0].get("burst_spread")
    for name, mode in (("added", "envoy+epp"), ("floor", "envoy+noop"), ("added_send", "envoy+epp-send")):
        if "envoy" in out and mode in out:
            for pct in ("p50", "p99"):
                out[f"{name}_{pct}_ms"] = out[mode][f"{pct}_ms"] - out["envoy"][f"{pct}_ms"]
    return out


async def _measure(
    harness: OverheadHarness, qps: float, duration_s: float, prompt_bytes: int, label: str,
    progress: Callable[[str], None] | None, max_tokens: int = 1,
) -> dict[str, Any]:  # fmt: skip
    """Every mode `repeats` times, interleaved (the order rotates each round)."""
    modes = list(harness.modes)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for round_no in range(harness.options.repeats):
        shift = round_no % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            if progress:
                progress(f"overhead {mode} {label} ({round_no + 1}/{harness.options.repeats})")
            runs[mode].append(await harness.client(mode, qps, duration_s, prompt_bytes, max_tokens))
    return overhead_row(qps, runs, "itl" if max_tokens > 1 else "e2e")


async def run_overhead(
    options: OverheadOptions, progress: Callable[[str], None] | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Rows for every rate plus the large-prompt row; and the EPP profile text."""
    harness = OverheadHarness(options)
    await harness.start()
    results: list[dict[str, Any]] = []
    try:
        for mode in harness.modes:  # warm connections and code paths
            if "epp" in mode:
                await harness.client(mode, 20, 0.5)
        await harness.spread_connections()
        if options.client_process:
            await harness.measure_idle_cpu()
        for qps in options.qps:
            results.append(await _measure(harness, qps, options.duration_s, 0, f"@ {qps:g} QPS", progress))
        if options.large_prompt_bytes:
            label = f"{options.large_prompt_bytes // 1000} KB prompt"
            big = await _measure(
                harness,
                options.large_qps,
                options.large_duration_s,
                options.large_prompt_bytes,
                label,
                progress,
            )
            big["prompt_bytes"] = options.large_prompt_bytes
            results.append(big)
        if options.itl_tokens:
            label = f"streaming {options.itl_tokens} tokens"
            itl = await _measure(
                harness, options.itl_qps, options.itl_duration_s, 0, label, progress, options.itl_tokens
            )
            itl["itl_tokens"] = options.itl_tokens
            results.append(itl)
        profile = ""
        if options.profile_s > 0 and "envoy+epp" in harness.modes:
            if progress:
                progress("profiling the EPP")
            profile = await harness.profile_epp(max(options.qps), options.profile_s)
        return results, profile
    finally:
        await harness.stop()
