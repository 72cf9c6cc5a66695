"""Closed-loop load generator for soak tests, run as its own process so that the test process's
memory is the EPP's alone and the client's CPU does not share the EPP's event loop.

    python -m tests.soak.loadgen --url http://127.0.0.1:8081/v1 --duration 600 --concurrency 32

Each worker sends one request at a time: a mix of completions and chat, streaming and not, with
prompts that share a few prefixes (so the EPP's prefix index keeps growing and evicting). It
prints a JSON line per interval and a final JSON summary (the last line of stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

MODEL = "meta-llama/Llama-2-7b-hf"
WORDS = [
    *("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog"),
    *("while", "seven", "wizards", "quietly", "hex", "jolly", "kings"),
]


@dataclass
class Stats:
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record(self, kind: str, seconds: float, detail: str = "") -> None:
        self.outcomes[kind] += 1
        if kind == "ok":
            self.latencies.append(seconds)
        elif len(self.errors) < 20:
            self.errors.append(detail[:300])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def make_request(rng: random.Random, base: str) -> tuple[str, dict[str, Any], bool]:
    prefix = " ".join(WORDS[: 4 + rng.randrange(8)]) * (1 + rng.randrange(20))
    text = f"{prefix} {rng.getrandbits(64):x} " + " ".join(rng.choices(WORDS, k=rng.randrange(5, 60)))
    stream = rng.random() < 0.25
    max_tokens = rng.randrange(4, 32)
    if rng.random() < 0.5:
        body: dict[str, Any] = {"model": MODEL, "prompt": text, "max_tokens": max_tokens}
        url = f"{base}/completions"
    else:
        body = {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}
        url = f"{base}/chat/completions"
    if stream:
        body["stream"] = True
    return url, body, stream


async def one(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], stream: bool
) -> tuple[str, str]:
    async with session.post(url, data=orjson.dumps(body), headers={"content-type": "application/json"}) as r:
        raw = await r.read()
        if r.status != 200:
            return "error", f"{r.status} {raw[:200]!r}"
        if stream:
            return ("ok", "") if raw.rstrip().endswith(b"data: [DONE]") else ("broken", repr(raw[-200:]))
        return ("ok", "") if b'"choices"' in raw else ("broken", repr(raw[:200]))


async def worker(
    session: aiohttp.ClientSession, base: str, seed: int, deadline: float, stats: Stats, guard_s: float
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        url, body, stream = make_request(rng, base)
        started = time.monotonic()
        try:
            kind, detail = await asyncio.wait_for(one(session, url, body, stream), guard_s)
        except TimeoutError:
            kind, detail = "hung", url
        except aiohttp.ClientError as exc:
            kind, detail = "transport", repr(exc)
        stats.record(kind, time.monotonic() - started, detail)


async def report(stats: Stats, started: float, deadline: float, interval: float) -> None:
    last_total, last_t = 0, started
    while time.monotonic() < deadline:
        await asyncio.sleep(interval)
        now, total = time.monotonic(), sum(stats.outcomes.values())
        line = {"t": round(now - started, 1), "qps": round((total - last_total) / (now - last_t), 1)}
        print(orjson.dumps(line | {"outcomes": dict(stats.outcomes)}).decode(), flush=True)
        last_total, last_t = total, now


async def run(
    base: str, duration: float, concurrency: int, interval: float, guard_s: float
) -> dict[str, Any]:
    stats = Stats()
    started = time.monotonic()
    deadline = started + duration
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as s:
        reporter = asyncio.create_task(report(stats, started, deadline, interval))
        await asyncio.gather(*(worker(s, base, i, deadline, stats, guard_s) for i in range(concurrency)))
        reporter.cancel()
    elapsed = time.monotonic() - started
    total = sum(stats.outcomes.values())
    return {
        "duration_s": round(elapsed, 2),
        "concurrency": concurrency,
        "sent": total,
        "outcomes": dict(stats.outcomes),
        "qps": round(stats.outcomes["ok"] / elapsed, 1),
        "p50_ms": round(percentile(stats.latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(stats.latencies, 0.99) * 1000, 2),
        "max_ms": round(max(stats.latencies, default=0.0) * 1000, 2),
        "errors": stats.errors,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="OpenAI base URL, e.g. http://127.0.0.1:8081/v1")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between progress lines")
    parser.add_argument("--guard", type=float, default=30.0, help="a request slower than this is 'hung'")
    args = parser.parse_args(argv)
    summary = asyncio.run(run(args.url, args.duration, args.concurrency, args.interval, args.guard))
    sys.stdout.write(orjson.dumps({"summary": summary}).decode() + "\n")


if __name__ == "__main__":
    main()
