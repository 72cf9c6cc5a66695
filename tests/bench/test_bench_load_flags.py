"""`bench load` flags, each checked by what a recording server receives: --model, --dataset,
--seed, --arrival constant, --concurrency (closed loop: never more in flight than users)."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from typer.testing import CliRunner

from inference_gateway.cli import app
from inference_gateway.local.stack import free_port


@dataclass
class Recorder:
    bodies: list[dict] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    delay_s: float = 0.0

    async def completions(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.json())
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(b'data: {"choices":[{"text":"hi"}]}\n\n')
            await resp.write(b'data: {"choices":[],"usage":{"completion_tokens":1}}\n\ndata: [DONE]\n\n')
            return resp
        finally:
            self.in_flight -= 1


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str]]:
    rec, port, ready = Recorder(), free_port(), threading.Event()
    loop = asyncio.new_event_loop()

    async def serve() -> web.AppRunner:
        server = web.Application()
        server.router.add_post("/v1/completions", rec.completions)
        runner = web.AppRunner(server, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    runner = loop.run_until_complete(serve())
    thread = threading.Thread(target=lambda: (ready.set(), loop.run_forever()), daemon=True)
    thread.start()
    ready.wait()
    try:
        yield rec, f"http://127.0.0.1:{port}/v1"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def load(url: str, *args: str) -> dict:
    out = Path(f"/tmp/ig-load-{free_port()}.json")
    try:
        result = CliRunner().invoke(app, ["bench", "load", "--url", url, *args, "--out", str(out)])
        assert result.exit_code == 0, result.output
        return orjson.loads(out.read_bytes())
    finally:
        out.unlink(missing_ok=True)


def test_model_dataset_and_seed(recorder: tuple[Recorder, str], tmp_path: Path) -> None:
    rec, url = recorder
    dataset = tmp_path / "sharegpt.json"
    prompts = [f"question number {i} about pizza and pasta and wine" for i in range(5)]
    dataset.write_bytes(
        orjson.dumps(
            [{"conversations": [{"value": p}, {"value": "a fine answer of words"}]} for p in prompts]
        )
    )
    args = ["--qps", "40", "--duration", "0.5", "--model", "my-model", "--dataset", str(dataset)]
    load(url, *args, "--seed", "7")
    first = [b["prompt"] for b in rec.bodies]
    assert {b["model"] for b in rec.bodies} == {"my-model"}
    assert first and set(first) <= set(prompts)
    rec.bodies.clear()
    load(url, *args, "--seed", "7")
    assert [b["prompt"] for b in rec.bodies] == first  # same seed, same requests
    rec.bodies.clear()
    load(url, *args, "--seed", "8")
    assert [b["prompt"] for b in rec.bodies] != first


def test_constant_arrivals_are_evenly_spaced(recorder: tuple[Recorder, str]) -> None:
    _, url = recorder
    row = load(url, "--qps", "20", "--duration", "1", "--arrival", "constant")
    sent = sorted(t[0] for t in row["timeline"])
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert len(sent) == 20 and 0.04 < statistics.median(gaps) < 0.06, gaps  # Poisson would scatter


def test_concurrency_is_a_closed_loop(recorder: tuple[Recorder, str]) -> None:
    rec, url = recorder
    rec.delay_s = 0.05
    row = load(url, "--concurrency", "3", "--duration", "1")
    assert row["concurrency"] == 3 and row["ok"] >= 10
    assert rec.peak == 3
