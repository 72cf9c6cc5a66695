"""`inference-gateway simulate`: run one simulated vLLM server, or a quick virtual fleet."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from inference_gateway.kvevents.hashing import HASH_ALGOS
from inference_gateway.kvevents.publisher import KVEventsConfig
from inference_gateway.media import MediaTokenRule
from inference_gateway.simulator.config import (
    DEFAULT_KV_BANDWIDTH_GB_S,
    DEFAULT_KV_LATENCY_MS,
    KVTransfer,
    LengthDistribution,
    ServerConfig,
)
from inference_gateway.simulator.faults import FaultInjector, FaultSpecError
from inference_gateway.simulator.fleet import run_fleet
from inference_gateway.simulator.profile import list_profiles
from inference_gateway.simulator.schedulers import (
    LeastRequestsScheduler,
    RandomScheduler,
    RoundRobinScheduler,
)
from inference_gateway.simulator.server import SimulatedServer
from inference_gateway.simulator.waiting import SCHEDULING_POLICIES
from inference_gateway.simulator.workload import SharedPrefixes, sharegpt_like

app = typer.Typer(help="Simulated vLLM model servers (no GPU needed).", no_args_is_help=False)
console = Console()


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free port).")] = 8000,
    model: Annotated[str, typer.Option(help="Served model name.")] = "meta-llama/Llama-2-7b-hf",
    profile: Annotated[str, typer.Option(help="Profile name or YAML path.")] = "h100-llama2-7b",
    metrics_flavor: Annotated[str, typer.Option(help="vllm | sglang | trtllm")] = "vllm",
    lora: Annotated[list[str] | None, typer.Option(help="Preloaded LoRA adapter.")] = None,
    time_scale: Annotated[float, typer.Option(help="Wall seconds per model second.")] = 1.0,
    max_num_seqs: Annotated[int, typer.Option()] = 256,
    max_num_batched_tokens: Annotated[int, typer.Option()] = 8192,
    num_gpu_blocks: Annotated[int | None, typer.Option(help="Default: profile's.")] = None,
    block_size: Annotated[int | None, typer.Option(help="Default: profile's.")] = None,
    max_loras: Annotated[int, typer.Option()] = 1,
    max_cpu_loras: Annotated[int | None, typer.Option()] = None,
    max_model_len: Annotated[int | None, typer.Option()] = None,
    output_len_median: Annotated[int, typer.Option(help="Output length without max_tokens.")] = 150,
    output_len_sigma: Annotated[float, typer.Option(help="Log-normal sigma (0 = fixed).")] = 1.0,
    seed: Annotated[int, typer.Option()] = 0,
    pod_name: Annotated[str | None, typer.Option(help="Name shown in logs and /version.")] = None,
    pod_namespace: Annotated[str, typer.Option(help="Namespace on the /dcgm/metrics page.")] = "default",
    kv_bandwidth_gb_s: Annotated[
        float, typer.Option(help="P/D: KV transfer bandwidth from prefill pods, GB/s.")
    ] = DEFAULT_KV_BANDWIDTH_GB_S,
    kv_latency_ms: Annotated[
        float, typer.Option(help="P/D: fixed cost per KV transfer, ms.")
    ] = DEFAULT_KV_LATENCY_MS,
    fault: Annotated[
        list[str] | None, typer.Option(help="Inject a fault, e.g. error500:0.5, hang, die-after-tokens:N.")
    ] = None,
    image_tokens: Annotated[
        int | None, typer.Option(help="Tokens per image (LLaVA-1.5: 576); default: by resolution (Qwen2-VL).")
    ] = None,
    scheduling_policy: Annotated[
        str,
        typer.Option(help="fcfs | priority (as vLLM: requests' `priority` field, lower runs first)."),
    ] = "fcfs",
    kv_events_config: Annotated[
        str | None,
        typer.Option(
            help='As vLLM: publish KV-cache events over ZMQ, e.g. \'{"enable_kv_cache_events": true, '
            '"publisher": "zmq", "endpoint": "tcp://*:5557"}\'; hashes are seeded by PYTHONHASHSEED.'
        ),
    ] = None,
    prefix_caching_hash_algo: Annotated[
        str, typer.Option(help="As vLLM: sha256_cbor | xxhash_cbor (hashes in KV events).")
    ] = "sha256_cbor",
    encode_only: Annotated[
        bool, typer.Option(help="E/P/D encode pod: run the encoder on requests' media, answer one token.")
    ] = False,
) -> None:
    """Run one vLLM-compatible simulated server until interrupted."""
    if ctx.invoked_subcommand is not None:
        return
    if metrics_flavor not in ("vllm", "sglang", "trtllm"):
        raise typer.BadParameter("metrics-flavor must be vllm, sglang or trtllm")
    if scheduling_policy not in SCHEDULING_POLICIES:
        raise typer.BadParameter("must be fcfs or priority", param_hint="--scheduling-policy")
    config = ServerConfig(
        served_model_name=model,
        lora_adapters=list(lora or []),
        profile=profile,
        metrics_flavor=metrics_flavor,  # type: ignore[arg-type]
        time_scale=time_scale,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        num_gpu_blocks=num_gpu_blocks,
        block_size=block_size,
        max_loras=max_loras,
        max_cpu_loras=max_cpu_loras,
        max_model_len=max_model_len,
        output_len=LengthDistribution(median=output_len_median, sigma=output_len_sigma),
        seed=seed,
        name=pod_name,
        namespace=pod_namespace,
        kv_transfer=KVTransfer(kv_bandwidth_gb_s, kv_latency_ms),
        faults=list(fault or []),
        scheduling_policy=scheduling_policy,  # type: ignore[arg-type]
        kv_events_config=kv_events_config,
        prefix_caching_hash_algo=prefix_caching_hash_algo,
        media=MediaTokenRule(image_tokens=image_tokens),
        encode_only=encode_only,
    )
    try:
        FaultInjector(config.faults)
    except FaultSpecError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault") from None
    if prefix_caching_hash_algo not in HASH_ALGOS:
        hint = "--prefix-caching-hash-algo"
        raise typer.BadParameter(f"must be one of {', '.join(HASH_ALGOS)}", param_hint=hint)
    try:
        KVEventsConfig.parse(kv_events_config or "{}")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--kv-events-config") from None
    asyncio.run(_serve(config, host, port))


async def _serve(config: ServerConfig, host: str, port: int) -> None:
    server = SimulatedServer(config)
    bound = await server.start(host, port)
    who = f"{config.name}: " if config.name else ""
    model = config.served_model_name
    console.print(f"{who}simulated vLLM '{model}' ({config.profile}) on {host}:{bound}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


@app.command("profiles")
def profiles() -> None:
    """List the shipped model/hardware profiles."""
    for name in list_profiles():
        console.print(name)


@app.command("fleet")
def fleet(
    servers: Annotated[int, typer.Option(help="Number of servers.")] = 4,
    qps: Annotated[float, typer.Option()] = 100.0,
    duration: Annotated[float, typer.Option(help="Seconds of arrivals (virtual).")] = 60.0,
    scheduler: Annotated[str, typer.Option(help="round-robin | random | least-requests")] = "round-robin",
    profile: Annotated[str, typer.Option()] = "h100-llama2-7b",
    scrape_interval: Annotated[float, typer.Option()] = 0.05,
    staleness: Annotated[float, typer.Option()] = 0.0,
    prefix_groups: Annotated[int, typer.Option(help="Shared prefixes (0 = none).")] = 0,
    prefix_tokens: Annotated[int, typer.Option()] = 0,
    prefix_fraction: Annotated[float, typer.Option()] = 0.0,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Run a ShareGPT-like workload through a virtual-time fleet and print a summary."""
    picks = {"round-robin": RoundRobinScheduler, "random": RandomScheduler}
    picks["least-requests"] = LeastRequestsScheduler
    if scheduler not in picks:
        raise typer.BadParameter(f"scheduler must be one of {', '.join(picks)}")
    configs = [ServerConfig(profile=profile, name=f"sim-{i}", seed=seed + i) for i in range(servers)]
    work = sharegpt_like(
        qps,
        duration,
        seed=seed,
        prefixes=SharedPrefixes(prefix_groups, prefix_tokens, prefix_fraction),
    )
    result = run_fleet(
        work, configs, picks[scheduler](), scrape_interval=scrape_interval, staleness=staleness
    )
    table = Table("metric", "value")
    for key, value in result.summary().items():
        table.add_row(key, f"{value:.4g}")
    table.add_row("wall_time_s", f"{result.wall_time:.2f}")
    console.print(table)


if __name__ == "__main__":
    app()
