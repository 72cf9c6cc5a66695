"""Wall-clock speed of the virtual-time fleet simulator (a benchmark, not a test).

Default: 4 H100 servers, 10 minutes of ShareGPT-like Poisson arrivals at 1000 QPS,
round-robin routing. Run:  PYTHONPATH=src python bench/sim_speed.py [--qps ..] [--duration ..]
"""

from __future__ import annotations

import json
import platform
import time
from typing import Annotated

import typer

from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet import run_fleet
from inference_gateway.simulator.schedulers import RoundRobinScheduler
from inference_gateway.simulator.workload import SharedPrefixes, sharegpt_like

app = typer.Typer(add_completion=False)


@app.command()
def main(
    qps: Annotated[float, typer.Option()] = 1000.0,
    duration: Annotated[float, typer.Option(help="Seconds of arrivals.")] = 600.0,
    servers: Annotated[int, typer.Option()] = 4,
    profile: Annotated[str, typer.Option()] = "h100-llama2-7b",
    prefix_fraction: Annotated[float, typer.Option(help="Share with a shared prefix.")] = 0.0,
    seed: Annotated[int, typer.Option()] = 1,
) -> None:
    configs = [ServerConfig(profile=profile, name=f"sim-{i}", seed=i) for i in range(servers)]
    prefixes = SharedPrefixes(groups=8, tokens=512, fraction=prefix_fraction)
    work = sharegpt_like(qps, duration, seed=seed, prefixes=prefixes)
    t0 = time.perf_counter()
    result = run_fleet(work, configs, RoundRobinScheduler())
    wall = time.perf_counter() - t0
    summary = result.summary()
    report = {
        "python": platform.python_version(),
        "qps": qps,
        "duration_s": duration,
        "servers": servers,
        "requests": int(summary["requests"]),
        "virtual_time_s": round(result.sim_time, 1),
        "wall_time_s": round(wall, 2),
        "steps": sum(s.stats.steps for s in result.servers),
        "preemptions": sum(s.stats.num_preemptions for s in result.servers),
        "output_tok_per_s": round(summary.get("output_token_throughput", 0.0), 1),
        "ttft_p50_s": round(summary.get("ttft_p50", 0.0), 3),
        "tpot_p50_ms": round(1000 * summary.get("tpot_p50", 0.0), 2),
    }
    typer.echo(json.dumps(report, indent=2))


if __name__ == "__main__":
    app()
