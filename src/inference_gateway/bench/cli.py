"""`inference-gateway bench`: run scenarios, regenerate the report, or load any OpenAI endpoint."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: EPP vs round robin, gateway overhead.")
console = Console(stderr=True)

RESULTS = Path("bench/results")
DOC = Path("docs/benchmarks.md")
IMAGES = Path("docs/img")


@bench_app.command()
def run(
    config: Annotated[list[Path], typer.Option(help="Scenario YAML (repeatable)")],
    only: Annotated[
        list[str] | None, typer.Option(help="virtual | realtime | overhead | sync (repeatable)")
    ] = None,
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
    output: Annotated[
        Path | None, typer.Option("--out", help="Write the results JSON here (also on Ctrl-C)")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a latency/throughput PNG here")] = None,
    give_up_after: Annotated[
        float, typer.Option(help="Stop when the target refuses connections this many seconds")
    ] = 10.0,
) -> None:
    """Drive any OpenAI-compatible endpoint: live progress, then a table of results."""
    from inference_gateway.bench.live import (
        UNITS,
        LoadSettings,
        plot_run,
        result_table,
        rounded,
        run_load,
        summary_line,
    )
    from inference_gateway.bench.workloads import WorkloadSpec

    if dataset is not None and not dataset.is_file():
        console.print(f"[red]error:[/red] {dataset}: no such file (--dataset)", highlight=False)
        raise typer.Exit(2)
    if arrival not in ("poisson", "constant"):
        console.print(f"[red]error:[/red] --arrival must be poisson or constant, not {arrival!r}")
        raise typer.Exit(2)
    kind = "dataset" if dataset else workload
    spec = WorkloadSpec.model_validate({"kind": kind, "model": model, "dataset": dataset})
    settings = LoadSettings(url, spec, qps, duration, concurrency, arrival, seed, give_up_after)  # type: ignore[arg-type]
    row = asyncio.run(run_load(settings, console))
    console.print()
    results = Console()
    results.print(summary_line(row), soft_wrap=True, highlight=False)
    results.print(result_table(row))
    if row["interrupted"]:
        console.print("interrupted: the table covers the requests that finished before Ctrl-C")
    if output:
        output.write_bytes(orjson.dumps({**rounded(row), "units": UNITS}, option=orjson.OPT_INDENT_2))
        console.print(f"results: {output}", highlight=False)
    if plot and row["ok"]:
        console.print(f"plot: {plot_run(row, plot)}", highlight=False)
    if row["stopped"]:
        console.print(f"[red]stopped:[/red] {row['stopped']} at {url}; is it running?", highlight=False)
        raise typer.Exit(1)
