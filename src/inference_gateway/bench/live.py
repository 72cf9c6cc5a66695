"""`inference-gateway bench load`, as a person watches it: a live progress line, a table with
units at the end, results kept on Ctrl-C, and a clear stop (after backing off) when the target
refuses connections."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from inference_gateway.bench.arrivals import ArrivalKind, arrival_times
from inference_gateway.bench.loadgen import ClientOptions, LoadGenerator, RequestRecord
from inference_gateway.bench.stats import outcomes_from_records, summarize
from inference_gateway.bench.workloads import WorkloadSpec, generate


@dataclass
class LoadSettings:
    url: str
    spec: WorkloadSpec
    qps: float = 10.0
    duration_s: float = 30.0
    concurrency: int = 0  # > 0: closed loop
    arrival: ArrivalKind = "poisson"
    seed: int = 1
    give_up_after_s: float = 10.0  # connections refused this long: stop the run


def _refused(record: RequestRecord) -> bool:
    return record.status == 0 and ("Connect" in record.error or "Disconnected" in record.error)


@dataclass
class Tracker:
    """Records as they finish, and backoff while the target refuses connections."""

    give_up_after_s: float
    records: list[RequestRecord] = field(default_factory=list)
    sent: int = 0
    started: float = field(default_factory=time.monotonic)
    down_since: float | None = None
    backoff_s: float = 0.0
    stop_reason: str = ""

    def on_done(self, record: RequestRecord) -> None:
        self.records.append(record)
        if _refused(record):
            self.down_since = self.down_since or time.monotonic()
        else:
            self.down_since, self.backoff_s = None, 0.0

    async def before_send(self) -> bool:
        if self.stop_reason:
            return False
        if self.down_since is not None:
            down_for = time.monotonic() - self.down_since
            if down_for >= self.give_up_after_s:
                self.stop_reason = f"the target refused connections for {down_for:.0f} s"
                return False
            self.backoff_s = min(max(self.backoff_s * 2, 0.1), 2.0)
            await asyncio.sleep(self.backoff_s)
        self.sent += 1
        return True

    def progress(self, in_flight: int) -> str:
        elapsed = time.monotonic() - self.started
        ok = [r for r in self.records if r.ok]
        errors = len(self.records) - len(ok)
        recent = [r.ttft for r in ok[-200:]]
        ttft = f"{np.median(recent) * 1e3:.0f} ms" if recent else "-"
        rate = len(ok) / elapsed if elapsed > 0 else 0.0
        down = "  target down, backing off" if self.down_since is not None else ""
        return (
            f"{elapsed:6.1f} s  sent {self.sent}  ok {len(ok)}  errors {errors}  in flight {in_flight}"
            f"  {rate:.1f} req/s  p50 TTFT {ttft}{down}"
        )


async def run_load(settings: LoadSettings, console: Console) -> dict[str, Any]:
    """Run until the duration ends, the target stays down, or Ctrl-C; summarize what finished."""
    tracker = Tracker(settings.give_up_after_s)
    loop = asyncio.get_running_loop()
    async with LoadGenerator(ClientOptions(settings.url)) as gen:
        job = asyncio.create_task(_drive(gen, settings, tracker))
        loop.add_signal_handler(signal.SIGINT, job.cancel)
        ticker = asyncio.create_task(_tick(console, tracker, gen))
        interrupted = False
        try:
            await job
        except asyncio.CancelledError:
            interrupted = True
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
    span = time.monotonic() - tracker.started
    labels: dict[str, Any] = {"url": settings.url, "workload": settings.spec.kind}
    labels |= {"concurrency": settings.concurrency} if settings.concurrency > 0 else {"qps": settings.qps}
    row = summarize(outcomes_from_records(tracker.records), span, **labels)
    row["interrupted"] = interrupted
    row["stopped"] = tracker.stop_reason
    row["timeline"] = [
        [round(r.sent, 4), round(r.ttft, 4), round(r.e2e, 4), r.output_tokens, int(r.ok)]
        for r in tracker.records
    ]
    return row


async def _drive(gen: LoadGenerator, settings: LoadSettings, tracker: Tracker) -> None:
    if settings.concurrency > 0:
        requests = generate(settings.spec, 10**9, settings.seed)
        await gen.closed_loop(
            requests, settings.concurrency, settings.duration_s, tracker.on_done, tracker.before_send
        )
        return
    offsets = list(arrival_times(settings.arrival, settings.qps, settings.duration_s, settings.seed))
    schedule = zip(offsets, generate(settings.spec, len(offsets), settings.seed), strict=False)
    await gen.open_loop(schedule, tracker.on_done, tracker.before_send)


async def _tick(console: Console, tracker: Tracker, gen: LoadGenerator) -> None:
    """A progress line: rewritten in place on a terminal, one line every 2 s otherwise."""
    interval = 0.5 if console.is_terminal else 2.0
    while True:
        await asyncio.sleep(interval)
        line = tracker.progress(gen.in_flight)
        if console.is_terminal:
            console.file.write(f"\r\x1b[2K{line}")
            console.file.flush()
        else:
            console.print(line, highlight=False, soft_wrap=True)


def _ms(d: dict[str, float], scale: float = 1.0, digits: int = 1) -> list[str]:
    return ["-" if np.isnan(d[k]) else f"{d[k] * scale:.{digits}f}" for k in ("mean", "p50", "p90", "p99")]


def summary_line(row: dict[str, Any]) -> str:
    errors = ", ".join(f"{k}: {v}" for k, v in row["errors"].items()) or "none"
    return (
        f"{row['requests']} requests in {row['span_s']:.1f} s: {row['ok']} ok, errors {errors}; "
        f"{row['throughput_rps']:.2f} req/s, {row['output_tps']:.0f} output tokens/s"
    )


def result_table(row: dict[str, Any]) -> Table:
    table = Table()
    for column in ("latency", "mean", "p50", "p90", "p99"):
        table.add_column(column, justify="left" if column == "latency" else "right")
    table.add_row("TTFT (ms)", *_ms(row["ttft"]))
    table.add_row("TPOT (ms)", *_ms(row["tpot"]))
    table.add_row("ITL (ms)", *_ms(row["itl"]))
    table.add_row("NTPOT (ms)", *_ms(row["ntpot"]))
    table.add_row("end to end (s)", *_ms(row["e2e"], 1e-3, 2))
    return table


def rounded(value: Any) -> Any:
    """JSON without 15-digit floats."""
    if isinstance(value, float):
        return None if np.isnan(value) else round(value, 3)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


UNITS = {"ttft": "ms", "tpot": "ms", "itl": "ms", "ntpot": "ms", "e2e": "ms", "span_s": "s"}
UNITS |= {"throughput_rps": "requests/s", "output_tps": "tokens/s", "input_tps": "tokens/s"}
UNITS |= {"timeline": "[sent s, ttft s, e2e s, output tokens, ok]"}


def plot_run(row: dict[str, Any], out: Path) -> Path:
    """Latency per request and throughput per second over the run, one PNG."""
    from inference_gateway.bench.plots import plt

    timeline = np.asarray(row["timeline"], dtype=float).reshape(-1, 5)
    ok = timeline[timeline[:, 4] == 1]
    fig, (lat, thr) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    lat.scatter(ok[:, 0], ok[:, 1] * 1e3, s=4, label="TTFT")
    lat.scatter(ok[:, 0], ok[:, 2] * 1e3, s=4, label="end to end")
    lat.set_ylabel("latency (ms)")
    lat.legend(loc="upper left")
    lat.grid(alpha=0.3)
    done = ok[:, 0] + ok[:, 2]
    edges = np.arange(0, max(float(done.max()) if done.size else 1.0, 1.0) + 1.0)
    counts, _ = np.histogram(done, bins=edges)
    tokens, _ = np.histogram(done, bins=edges, weights=ok[:, 3])
    thr.step(edges[:-1], counts, where="post", label="requests/s")
    thr.set_ylabel("completed requests/s")
    thr.set_xlabel("time since start (s)")
    thr.grid(alpha=0.3)
    tok = thr.twinx()
    tok.step(edges[:-1], tokens, where="post", color="C1", label="output tokens/s")
    tok.set_ylabel("output tokens/s")
    fig.suptitle(f"{row['url']}  {row['workload']}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
