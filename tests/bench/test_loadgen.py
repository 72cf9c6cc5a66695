"""The HTTP load generator against the instant backend: streaming timings, errors, loops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from aiohttp import web

from inference_gateway.bench.instant import InstantBackend, serve
from inference_gateway.bench.loadgen import ClientOptions, LoadGenerator, _has_token
from inference_gateway.bench.stats import distribution, outcomes_from_records, summarize
from inference_gateway.bench.workloads import BenchRequest, WorkloadSpec, generate
from inference_gateway.local.stack import free_port


@pytest.fixture
async def backend() -> AsyncIterator[str]:
    port = free_port()
    runner: web.AppRunner = await serve([("127.0.0.1", port)], InstantBackend(tokens=5))
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


async def test_streaming_records_ttft_itl_and_token_counts(backend: str) -> None:
    requests = list(generate(WorkloadSpec(), 6, seed=1))
    schedule = [(0.01 * i, r) for i, r in enumerate(requests)]
    async with LoadGenerator(ClientOptions(backend)) as gen:
        records = await gen.open_loop(schedule)
    assert [r.index for r in records] == [r.index for r in requests]
    for rec in records:
        assert rec.ok, rec.error
        assert rec.output_tokens == 5 and rec.chunks == 5
        assert len(rec.itl) == 4
        assert 0 < rec.ttft <= rec.e2e
        assert rec.sent >= rec.scheduled
    row = summarize(outcomes_from_records(records), 1.0, policy="x")
    assert row["ok"] == 6 and row["errors"] == {}
    assert row["output_tps"] == pytest.approx(30.0)


async def test_http_errors_are_counted_by_status(backend: str) -> None:
    bad = ClientOptions(backend.replace("/v1", "/nope"))
    async with LoadGenerator(bad) as gen:
        records = await gen.open_loop([(0.0, BenchRequest(0, "m", 4, 2))])
    assert records[0].status == 404 and not records[0].ok
    assert summarize(outcomes_from_records(records), 1.0)["errors"] == {"404": 1}


async def test_connection_errors_are_recorded_not_raised() -> None:
    dead = ClientOptions(f"http://127.0.0.1:{free_port()}/v1", timeout_s=2)
    async with LoadGenerator(dead) as gen:
        records = await gen.open_loop([(0.0, BenchRequest(0, "m", 4, 2))])
    assert records[0].status == 0 and records[0].error
    assert summarize(outcomes_from_records(records), 1.0)["errors"] == {"conn-error": 1}


async def test_closed_loop_keeps_at_most_concurrency_in_flight(backend: str) -> None:
    peak = 0
    async with LoadGenerator(ClientOptions(backend, stream=False)) as gen:

        def seen(_: object) -> None:
            nonlocal peak
            peak = max(peak, gen.in_flight)

        records = await gen.closed_loop(generate(WorkloadSpec(), 30, seed=2), 3, 30.0, seen)
    assert len(records) == 30
    assert all(r.ok and r.output_tokens >= 1 for r in records)
    assert peak <= 3


def test_sse_token_detection() -> None:
    assert _has_token(b'data: {"choices":[{"text":" hi"}]}')
    assert _has_token(b'data: {"choices":[{"delta":{"content":"x"}}]}')
    assert not _has_token(b'data: {"choices":[{"text":"","finish_reason":"length"}]}')
    assert not _has_token(b'data: {"choices":[],"usage":{"completion_tokens":3}}')
    assert not _has_token(b'data: {"choices":[{"delta":{"content":null}}]}')


def test_distribution_is_in_milliseconds_and_matches_numpy() -> None:
    values = np.random.default_rng(1).exponential(0.1, 1000)
    d = distribution(values)
    assert d["p90"] == pytest.approx(1e3 * np.percentile(values, 90))
    assert d["mean"] == pytest.approx(1e3 * values.mean())
    assert np.isnan(distribution([])["p50"])


def test_bench_load_command_drives_an_endpoint(tmp_path: Path) -> None:
    import subprocess
    import sys

    from typer.testing import CliRunner

    from inference_gateway.cli import app

    port = free_port()
    args = ["--listen", f"127.0.0.1:{port}", "--tokens", "3"]
    backend = subprocess.Popen(
        [sys.executable, "-m", "inference_gateway.bench.instant", *args], stdout=subprocess.PIPE
    )
    try:
        assert backend.stdout is not None and backend.stdout.readline().strip() == b"ready"
        out = tmp_path / "load.json"
        result = CliRunner().invoke(
            app,
            ["bench", "load", "--url", f"http://127.0.0.1:{port}/v1", "--qps", "40", "--duration", "0.5",
             "--workload", "criticality", "--out", str(out)],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        row = orjson.loads(out.read_bytes())
        assert row["ok"] == row["requests"] > 5
        assert row["ttft"]["p50"] > 0 and row["output_tps"] > 0
    finally:
        backend.terminate()
        backend.wait()
