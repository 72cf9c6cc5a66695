"""The load generator as its own process, so its CPU does not compete with the gateway's loop.

Fixed small requests (the overhead benchmark):
    python -m inference_gateway.bench.client --url http://127.0.0.1:8081/v1 --qps 100 \
        --duration 10 --out result.json [--prompt-bytes 220000] [--no-stream]
A workload (real-time runs): add --workload spec.json (a WorkloadSpec as JSON) and --seed.
Writes one JSON object: the run summary, requests per serving pod, and the sorted e2e
latencies in seconds.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from inference_gateway.bench.arrivals import ArrivalKind, arrival_times
from inference_gateway.bench.loadgen import ClientOptions, LoadGenerator, RequestRecord
from inference_gateway.bench.stats import outcomes_from_records, summarize
from inference_gateway.bench.text import synthetic_text, text_of_bytes
from inference_gateway.bench.workloads import BenchRequest, WorkloadSpec, generate
from inference_gateway.local.event_loop import loop_runner


def fixed_requests(
    count: int, prompt_tokens: int, max_tokens: int, model: str, prompt_bytes: int = 0
) -> list[BenchRequest]:
    """Identical requests (one shared prompt text) so the client spends no time on text."""
    text = text_of_bytes(prompt_bytes, 1) if prompt_bytes else synthetic_text(prompt_tokens, 1)
    return [BenchRequest(i, model, prompt_tokens, max_tokens, text=text) for i in range(count)]


async def _open_loop(
    url: str,
    schedule: Iterable[tuple[float, BenchRequest]],
    duration_s: float,
    stream: bool,
    keep_itl: bool,
    by_request: bool = False,
) -> dict[str, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    async with LoadGenerator(ClientOptions(url, stream=stream, keep_itl=keep_itl)) as gen:
        records = await gen.open_loop(schedule)
    wall = time.perf_counter() - started
    row = summarize(outcomes_from_records(records), wall, duration_s=duration_s)
    row["achieved_qps"] = len(records) / max(duration_s, 1e-9)
    row["per_pod"] = per_pod(records)
    row["e2e_s"] = sorted(r.e2e for r in records if r.ok)
    if by_request:
        # Every policy gets the same requests at the same times: TTFT by request index lets two
        # policies be compared request for request (bench/peers.py's paired bootstrap).
        ordered = sorted(records, key=lambda r: r.index)
        row["ttft_ms_by_request"] = [
            round(r.ttft * 1e3, 1) if r.ok and r.ttft >= 0 else None for r in ordered
        ]
    # The load generator's own CPU: on a small machine it competes with the gateway it measures.
    row["client_cpu_s"] = time.process_time() - cpu
    return row


def per_pod(records: list[RequestRecord]) -> dict[str, int]:
    """Requests per serving pod, from the EPP's served-endpoint response header."""
    counts: dict[str, int] = {}
    for r in records:
        if r.served_by:
            counts[r.served_by] = counts.get(r.served_by, 0) + 1
    return dict(sorted(counts.items()))


async def run_fixed_rate(
    url: str,
    qps: float,
    duration_s: float,
    prompt_tokens: int = 64,
    prompt_bytes: int = 0,
    max_tokens: int = 1,
    model: str = "meta-llama/Llama-2-7b-hf",
    stream: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    offsets = list(arrival_times("poisson", qps, duration_s, seed))
    requests = fixed_requests(len(offsets), prompt_tokens, max_tokens, model, prompt_bytes)
    keep_itl = stream and max_tokens > 1
    row = await _open_loop(url, zip(offsets, requests, strict=True), duration_s, stream, keep_itl)
    return {"qps": qps, **row}


async def run_workload(
    url: str,
    spec: WorkloadSpec,
    qps: float,
    duration_s: float,
    seed: int,
    rename: dict[str, str] | None = None,
    arrival: ArrivalKind = "poisson",
) -> dict[str, Any]:
    """The workload's requests at `arrival` times; `rename` maps model names (e.g. to the base)."""
    offsets = list(arrival_times(arrival, qps, duration_s, seed))
    requests = list(generate(spec, len(offsets), seed))
    for r in requests:
        r.model = (rename or {}).get(r.model, r.model)
    schedule = zip(offsets, requests, strict=True)
    row = await _open_loop(url, schedule, duration_s, True, keep_itl=True, by_request=True)
    return {"qps": qps, **row}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="open-loop Poisson load at a fixed rate")
    p.add_argument("--url", required=True, help="OpenAI base URL, e.g. http://127.0.0.1:8081/v1")
    p.add_argument("--qps", type=float, required=True)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--workload", type=Path, help="WorkloadSpec JSON; default: fixed small requests")
    p.add_argument("--rename", default="{}", help="JSON map of model names to replace (workload mode)")
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--prompt-bytes", type=int, default=0, help="a prompt of exactly this many bytes")
    p.add_argument("--max-tokens", type=int, default=1)
    p.add_argument("--model", default="meta-llama/Llama-2-7b-hf")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    if a.workload:
        spec = WorkloadSpec.model_validate_json(a.workload.read_bytes())
        job = run_workload(a.url, spec, a.qps, a.duration, a.seed, orjson.loads(a.rename))
    else:
        job = run_fixed_rate(
            a.url, a.qps, a.duration, a.prompt_tokens, a.prompt_bytes, a.max_tokens, a.model,
            not a.no_stream, a.seed,
        )  # fmt: skip
    # Plain asyncio: on uvloop 0.23 this client died with SIGSEGV in ~1 of 20 short overhead
    # runs (exit status -11, nothing on stderr); its CPU per request is reported either way.
    a.out.write_bytes(orjson.dumps(loop_runner("asyncio")(job)))


if __name__ == "__main__":
    main()
