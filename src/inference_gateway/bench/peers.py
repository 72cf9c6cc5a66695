"""Peer routers as real-time bench policies: sglang-router and vllm-router in front of the same
simulated pods, fed the same Poisson traffic as Envoy round robin and the EPP.

Both are Rust routers shipped as Python wheels (`pip install 'inference-gateway[peers]'`, or
`pip install sglang-router vllm-router`); the product does not need them. They are started as
`python -m <module>.launch_router` with the pods as `--worker-urls`; the load client then talks to
the router instead of Envoy. vllm-router's `kv_aware` policy subscribes to each pod's KV-cache
events (vLLM's ZMQ publisher, which the simulator reproduces), so it needs one event port per pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import math
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp
import numpy as np

from inference_gateway.local.children import dies_with_parent

PeerKind = Literal["sglang-router", "vllm-router"]
PEER_KINDS: tuple[PeerKind, ...] = ("sglang-router", "vllm-router")
_MODULES: dict[PeerKind, str] = {"sglang-router": "sglang_router", "vllm-router": "vllm_router"}
# Policies each router accepts with plain worker URLs (PD-only and "manual" policies left out).
PEER_POLICIES: dict[PeerKind, tuple[str, ...]] = {
    "sglang-router": ("cache_aware", "round_robin", "power_of_two", "random"),
    "vllm-router": ("cache_aware", "kv_aware", "round_robin", "power_of_two", "random", "consistent_hash"),
}
_LOG_LEVEL: dict[PeerKind, str] = {"sglang-router": "warn", "vllm-router": "warning"}


@dataclass(frozen=True)
class PeerRouterSpec:
    kind: PeerKind
    policy: str
    extra_args: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        return _MODULES[self.kind]

    @property
    def needs_kv_events(self) -> bool:
        return self.kind == "vllm-router" and self.policy == "kv_aware"


def check_policy(kind: PeerKind, policy: str | None) -> str:
    """The router policy, or a one-line ValueError naming what is accepted."""
    accepted = PEER_POLICIES[kind]
    if policy not in accepted:
        raise ValueError(f"{kind}: router_policy must be one of {', '.join(accepted)}, got {policy!r}")
    return policy


def missing_reason(kind: PeerKind) -> str | None:
    """Why `kind` cannot run here (its wheel is not installed), or None."""
    module = _MODULES[kind]
    if importlib.util.find_spec(module) is None:
        return f"{kind} is not installed (pip install 'inference-gateway[peers]' or pip install {kind})"
    return None


@dataclass(frozen=True)
class PeerWorker:
    url: str  # http://ip:port
    kv_events: str | None = None  # tcp://ip:port of the pod's KV-event publisher


def launch_args(
    spec: PeerRouterSpec,
    workers: list[PeerWorker],
    port: int,
    metrics_port: int,
    model: str,
    block_size: int,
) -> list[str]:
    """The router's command line (without the interpreter)."""
    args = ["-m", f"{spec.module}.launch_router", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--worker-urls", *(w.url for w in workers), "--policy", spec.policy]
    # Its Prometheus listener defaults to a fixed port (29000): give each run its own.
    args += ["--prometheus-host", "127.0.0.1", "--prometheus-port", str(metrics_port)]
    args += ["--log-level", _LOG_LEVEL[spec.kind]]
    if spec.needs_kv_events:
        sources = [w for w in workers if w.kv_events]
        if len(sources) != len(workers):
            raise ValueError("vllm-router kv_aware needs a KV-event endpoint for every pod")
        for w in sources:
            args += ["--kv-event-source", f"{w.url}={w.kv_events}"]
        args += ["--kv-event-model", model, "--kv-event-block-size", str(block_size)]
    return [*args, *spec.extra_args]


class PeerRouterProcess:
    """One router process; ready once it answers /v1/models through a registered worker."""

    def __init__(self, argv: list[str], port: int, log: Path) -> None:
        self.argv = argv
        self.port = port
        self.log = log
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self, timeout_s: float = 60.0) -> None:
        with self.log.open("wb") as out:
            self._proc = await asyncio.create_subprocess_exec(
                *dies_with_parent([sys.executable, *self.argv]),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        try:
            await self._wait_ready(timeout_s)
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while loop.time() < deadline:
                assert self._proc is not None
                if self._proc.returncode is not None:
                    raise RuntimeError(f"router exited with {self._proc.returncode}: {self._tail()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self.base_url}/models") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"router not ready after {timeout_s:g} s: {self._tail()}")

    def _tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def paired_p90_ci(
    ours: list[float | None], theirs: list[float | None], resamples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """95 % bootstrap interval of p90(ours) / p90(theirs) - 1, in %, resampling requests: both
    runs served the same requests at the same times, so request i of one pairs with request i
    of the other. A failed request (None) never got a first token: it counts as infinitely
    late. None when the runs cannot be paired, hold too few requests, or both p90s are failures."""
    if len(ours) != len(theirs) or len(ours) < 20:
        return None
    pairs = np.asarray([_late(ours), _late(theirs)]).T
    # Interpolating between a finite TTFT and a failure means nothing: take the order statistic.
    method: Literal["higher", "linear"] = "higher" if np.isinf(pairs).any() else "linear"
    picks = np.random.default_rng(seed).integers(0, len(pairs), (resamples, len(pairs)))
    p90_ours = np.percentile(pairs[:, 0][picks], 90, axis=1, method=method)
    p90_theirs = np.percentile(pairs[:, 1][picks], 90, axis=1, method=method)
    with np.errstate(invalid="ignore", divide="ignore"):
        diffs = 100 * (p90_ours / p90_theirs - 1)
    if np.isnan(diffs).any():
        return None
    low, high = np.percentile(diffs, [2.5, 97.5], method=method)
    return float(low), float(high)


def _late(ttfts: list[float | None]) -> list[float]:
    return [math.inf if t is None else t for t in ttfts]


def p90_ttft(row: dict[str, Any]) -> float:
    """The row's p90 TTFT over every request sent: infinite when more than 10 % failed."""
    by_request = row.get("ttft_ms_by_request")
    if not by_request or None not in by_request:
        return float(row["ttft"]["p90"])
    return float(np.percentile(_late(by_request), 90, method="higher"))


def _ms(row: dict[str, Any], p90: float) -> str:
    failed = 1 - row["ok"] / row["requests"] if row.get("requests") else 0.0
    shown = "never (failed)" if math.isinf(p90) else f"{p90:,.0f}"
    return f"{shown}, {100 * failed:.0f} % failed" if failed else shown


def _verdict(ci: tuple[float, float] | None) -> str:
    if ci is None:
        return "-"
    return "better" if ci[1] < 0 else "worse" if ci[0] > 0 else "tie"


def target_table(rows: list[dict[str, Any]], ours: str = "epp-default") -> str:
    """Issue 15's real-time target per rate: our default's p90 TTFT at or below the best peer's,
    with the paired bootstrap interval of the difference where the rows carry per-request TTFTs."""
    by_rate: dict[float, dict[str, dict[str, Any]]] = {}
    for r in rows:
        if r["policy"] == ours or r.get("router"):
            by_rate.setdefault(r["qps"], {})[r["policy"]] = r
    lines = [
        f"| QPS | {ours} p90 TTFT | best peer | its p90 TTFT | {ours} vs best "
        "| 95 % interval | verdict | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for qps, cell in sorted(by_rate.items()):
        peers = {k: p90_ttft(v) for k, v in cell.items() if k != ours}
        if ours not in cell or not peers:
            continue
        best = min(peers, key=lambda k: peers[k])
        mine = p90_ttft(cell[ours])
        finite = not (math.isinf(mine) or math.isinf(peers[best]))
        diff = f"{100 * (mine / peers[best] - 1):+.0f} %" if finite else "-"
        a, b = (cell[k].get("ttft_ms_by_request") for k in (ours, best))  # the same requests, by index
        ci = paired_p90_ci(a, b) if a and b else None
        interval = f"{ci[0]:+.0f} to {ci[1]:+.0f} %" if ci else "-"
        met = "yes" if mine <= peers[best] else "no"
        lines.append(
            f"| {qps:g} | {_ms(cell[ours], mine)} | {best} | {_ms(cell[best], peers[best])} | {diff} "
            f"| {interval} | {_verdict(ci)} | {met} |"
        )
    return "\n".join(lines) + (
        "\n\np90 TTFT in ms over every request sent (a failed request counts as never answered); met = "
        "ours at or below the best peer router's (issue 15). The interval is a paired bootstrap over "
        "requests (every policy served the same requests at the same times); verdict: better / worse "
        "when the whole interval is below / above 0, else tie."
    )
