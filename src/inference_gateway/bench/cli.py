"""`inference-gateway bench`: run scenarios, regenerate the report, or load any OpenAI endpoint."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console

if TYPE_CHECKING:
    from inference_gateway.bench.workloads import WorkloadSpec

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: EPP vs round robin, gateway overhead.")
console = Console(stderr=True)

RESULTS = Path("bench/results")
DOC = Path("docs/benchmarks.md")
IMAGES = Path("docs/img")


@bench_app.command()
def run(
    config: Annotated[list[Path], typer.Option(help="Scenario YAML (repeatable)")],
    only: Annotated[list[str] | None, typer.Option(help="virtual | realtime | overhead (repeatable)")] = None,
    smoke: Annotated[bool, typer.Option(help="Seconds-long version of every section")] = False,
    out: Annotated[Path, typer.Option(help="Results directory")] = RESULTS,
    workers: Annotated[int | None, typer.Option(help="Processes for virtual runs")] = None,
    report: Annotated[bool, typer.Option(help="Regenerate docs tables and plots afterwards")] = True,
) -> None:
    """Run scenario sections; results go to <out>/<scenario>/*.jsonl."""
    from inference_gateway.bench.runner import run_scenario
    from inference_gateway.bench.scenario import load_scenario

    logging.basicConfig(level=logging.WARNING)
    for path in config:
        try:
            scenario = load_scenario(path)
        except (ValueError, OSError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        if smoke:
            scenario = scenario.smoke_version()
        if workers is not None and scenario.virtual is not None:
            scenario.virtual.workers = workers
        written = run_scenario(scenario, out, set(only) if only else None)
        for section, file in written.items():
            console.print(f"{scenario.name}: {section} -> {file}")
    if report and not smoke:
        _report(out, DOC, IMAGES)


@bench_app.command("report")
def report_cmd(
    results: Annotated[Path, typer.Option(help="Results directory")] = RESULTS,
    doc: Annotated[Path, typer.Option(help="Markdown file with generated blocks")] = DOC,
    images: Annotated[Path, typer.Option(help="Where PNG plots go")] = IMAGES,
) -> None:
    """Rebuild the tables in docs/benchmarks.md and the plots from the results."""
    _report(results, doc, images)


def _report(results: Path, doc: Path, images: Path) -> None:
    from inference_gateway.bench.report import render, update_document

    blocks = render(results, images, doc.parent)
    replaced = update_document(doc, blocks) if doc.exists() else []
    console.print(f"report: {len(replaced)} blocks updated in {doc}; plots in {images}")
    missing = sorted(set(blocks) - set(replaced))
    if missing:
        console.print(f"  (no place in {doc} for: {', '.join(missing)})")


@bench_app.command()
def load(
    url: Annotated[str, typer.Option(help="OpenAI base URL, e.g. http://127.0.0.1:8081/v1")],
    qps: Annotated[
        float, typer.Option(help="Offered load (Poisson); 0 with --concurrency: closed loop")
    ] = 10,
    duration: Annotated[float, typer.Option(help="Seconds of arrivals")] = 30,
    concurrency: Annotated[int, typer.Option(help="Closed loop: this many users back to back")] = 0,
    workload: Annotated[
        str, typer.Option(help="sharegpt | shared-prefix | multi-lora | criticality | long-prompt")
    ] = "sharegpt",
    dataset: Annotated[Path | None, typer.Option(help="ShareGPT JSON (conversations[].value)")] = None,
    model: Annotated[str, typer.Option()] = "meta-llama/Llama-2-7b-hf",
    arrival: Annotated[str, typer.Option(help="poisson | constant")] = "poisson",
    seed: Annotated[int, typer.Option()] = 1,
    output: Annotated[Path | None, typer.Option("--out", help="Write the summary JSON here")] = None,
) -> None:
    """Drive any OpenAI-compatible endpoint and print the run summary."""
    from inference_gateway.bench.workloads import WorkloadSpec

    kind = "dataset" if dataset else workload
    spec = WorkloadSpec.model_validate({"kind": kind, "model": model, "dataset": dataset})
    row = asyncio.run(_load(url, qps, duration, concurrency, spec, arrival, seed))
    text = orjson.dumps(row, option=orjson.OPT_INDENT_2)
    if output:
        output.write_bytes(text)
    print(text.decode())


async def _load(
    url: str, qps: float, duration: float, concurrency: int, spec: WorkloadSpec, arrival: str, seed: int
) -> dict[str, Any]:
    import time

    from inference_gateway.bench.client import run_workload
    from inference_gateway.bench.loadgen import ClientOptions, LoadGenerator
    from inference_gateway.bench.stats import outcomes_from_records, summarize
    from inference_gateway.bench.workloads import generate

    if concurrency <= 0:
        row = await run_workload(url, spec, qps, duration, seed, arrival=arrival)  # type: ignore[arg-type]
        row.pop("e2e_s", None)
        return {"url": url, "workload": spec.kind, **row}
    started = time.perf_counter()
    async with LoadGenerator(ClientOptions(url)) as gen:
        records = await gen.closed_loop(generate(spec, 10**9, seed), concurrency, duration)
    span = time.perf_counter() - started
    return summarize(
        outcomes_from_records(records), span, url=url, concurrency=concurrency, workload=spec.kind
    )
