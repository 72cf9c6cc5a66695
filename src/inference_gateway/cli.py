"""The `inference-gateway` command line."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from inference_gateway.api.errors import ManifestError
from inference_gateway.bench.cli import bench_app

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="A model-aware Endpoint Picker for Envoy (Gateway API Inference Extension).",
)
console = Console(stderr=True)

LogLevel = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error")]


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


async def _run_until_signalled(start, stop) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    try:
        await start()
        await stopped.wait()
    finally:
        await stop()


@app.command()
def up(
    config: Annotated[
        Path, typer.Option(help="Directory of YAML: InferencePool, InferenceModel, LocalFleet")
    ] = Path("examples/local"),
    port: Annotated[int | None, typer.Option(help="Gateway listen port (default from LocalFleet)")] = None,
    epp_port: Annotated[int | None, typer.Option(help="EPP gRPC port (default from LocalFleet)")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="EPP Prometheus port (default 9090)")] = None,
    health_port: Annotated[int | None, typer.Option(help="EPP gRPC health port (default 9003)")] = None,
    epp_config: Annotated[Path | None, typer.Option(help="EndpointPickerConfig YAML")] = None,
    time_scale: Annotated[float | None, typer.Option(help="Simulator time scale (0.1 = 10x faster)")] = None,
    tls: Annotated[
        bool, typer.Option(help="mTLS between Envoy and the EPP (certificates minted per run)")
    ] = False,
    log_level: LogLevel = "info",
) -> None:
    """Run simulated model servers, the EPP and a real Envoy on loopback until Ctrl-C."""
    from inference_gateway.local.stack import LocalStack, StackOptions

    setup_logging(log_level)
    try:
        stack = LocalStack(
            StackOptions(
                config_dir=config,
                gateway_port=port,
                epp_port=epp_port,
                time_scale=time_scale,
                epp_config=epp_config.read_text() if epp_config else None,
            )
        )
    except (ManifestError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None

    async def start() -> None:
        await stack.start()
        models = sorted({m.model_name for m in stack.resources.models})
        console.print(
            f"\n[green]inference-gateway is up.[/green] OpenAI base URL: [bold]{stack.base_url}[/bold]"
        )
        console.print(f"  pods: {', '.join(a for p in stack.pods for a in p.addresses)}")
        console.print(f"  models: {', '.join(models)}")
        example = models[0] if models else "MODEL"
        console.print(
            f"  try: curl -s {stack.base_url}/completions -H 'content-type: application/json' "
            f'-d \'{{"model": "{example}", "prompt": "Hello", "max_tokens": 20}}\''
        )
        console.print("  Ctrl-C to stop.\n")

    asyncio.run(_run_until_signalled(start, stack.stop))
    console.print("stopped; all child processes are gone.")


@app.command()
def validate(path: Annotated[Path, typer.Argument(help="YAML file or directory")]) -> None:
    """Check manifests and print every error with file, object and field."""
    from inference_gateway.local.stack import load_directory

    try:
        resources, _ = load_directory(path)
    except ManifestError as exc:
        console.print(f"[red]invalid:[/red] {exc}")
        raise typer.Exit(1) from None
    r = resources
    console.print(
        f"ok: {len(r.pools)} pools, {len(r.models)} models, {len(r.objectives)} objectives, "
        f"{len(r.rewrites)} rewrites, {len(r.pods)} pods"
    )


@app.command()
def epp(
    pool_name: Annotated[str | None, typer.Option(help="InferencePool to serve (Kubernetes mode)")] = None,
    pool_namespace: Annotated[str, typer.Option(help="Namespace of the pool")] = "default",
    pool_group: Annotated[str, typer.Option(help="API group of the pool")] = "inference.networking.k8s.io",
    resources: Annotated[Path | None, typer.Option(help="Directory of YAML instead of Kubernetes")] = None,
    host: Annotated[str, typer.Option(help="Address to bind")] = "0.0.0.0",
    grpc_port: Annotated[int, typer.Option(help="ext_proc gRPC port")] = 9002,
    grpc_health_port: Annotated[int, typer.Option(help="grpc.health.v1 port")] = 9003,
    metrics_port: Annotated[int, typer.Option(help="Prometheus /metrics port")] = 9090,
    config_file: Annotated[Path | None, typer.Option(help="EndpointPickerConfig YAML")] = None,
    kubeconfig: Annotated[str | None, typer.Option(help="kubeconfig path (default: in-cluster)")] = None,
    ha_enable_leader_election: Annotated[bool, typer.Option(help="Elect a leader by Lease")] = False,
    followers_serve: Annotated[bool, typer.Option(help="Non-leaders serve ext_proc too")] = False,
    secure_serving: Annotated[bool, typer.Option(help="Serve ext_proc over TLS")] = False,
    cert_path: Annotated[Path | None, typer.Option(help="Dir with tls.crt, tls.key (and ca.crt)")] = None,
    require_client_cert: Annotated[bool, typer.Option(help="mTLS: verify the gateway's cert")] = False,
    otlp_endpoint: Annotated[str | None, typer.Option(help="Export traces to this OTLP endpoint")] = None,
    prefix_sync_port: Annotated[int | None, typer.Option(help="Serve prefix-index gossip here")] = None,
    prefix_sync_peer: Annotated[list[str] | None, typer.Option(help="Peer replica host:port")] = None,
    prefix_sync_peers_dns: Annotated[
        str | None, typer.Option(help="Headless Service name:port listing peer replicas")
    ] = None,
    prefix_sync_redis_url: Annotated[str | None, typer.Option(help="Share prefix state via Redis")] = None,
    log_level: LogLevel = "info",
) -> None:
    """Run the Endpoint Picker for your own Envoy (see `envoy-config`), fed by Kubernetes or files."""
    from inference_gateway.commands.epp import EPPCommand, run

    setup_logging(log_level)
    if secure_serving and cert_path is None:
        console.print("[red]error:[/red] --secure-serving needs --cert-path")
        raise typer.Exit(2)
    cmd = EPPCommand(
        pool_name=pool_name,
        pool_namespace=pool_namespace,
        pool_group=pool_group,
        resources=resources,
        host=host,
        grpc_port=grpc_port,
        health_port=grpc_health_port,
        metrics_port=metrics_port,
        config_file=config_file,
        kubeconfig=kubeconfig,
        leader_election=ha_enable_leader_election,
        followers_serve=followers_serve,
        cert_path=cert_path if secure_serving else None,
        require_client_cert=require_client_cert,
        otlp_endpoint=otlp_endpoint,
        prefix_sync_port=prefix_sync_port,
        prefix_sync_peers=tuple(prefix_sync_peer or ()),
        prefix_sync_peers_dns=prefix_sync_peers_dns,
        prefix_sync_redis_url=prefix_sync_redis_url,
    )
    try:
        cmd.validate()
        asyncio.run(run(cmd))
    except (ValueError, ManifestError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command("envoy-config")
def envoy_config(
    epp_host: Annotated[str, typer.Option(help="Where Envoy reaches the EPP")] = "127.0.0.1",
    epp_port: Annotated[int, typer.Option(help="EPP gRPC port")] = 9002,
    listen_port: Annotated[int, typer.Option(help="Gateway listen port")] = 8081,
    eds_path: Annotated[str, typer.Option(help="File-based EDS resource with the pool's endpoints")] = (
        "/etc/envoy/eds.yaml"
    ),
    fail_open: Annotated[bool, typer.Option(help="FailOpen instead of FailClose")] = False,
) -> None:
    """Print an Envoy bootstrap that puts the EPP on the request path (for your own Envoy)."""
    import yaml

    from inference_gateway.api.types import FailureMode
    from inference_gateway.envoy.bootstrap import EnvoyConfig, bootstrap

    mode = FailureMode.FAIL_OPEN if fail_open else FailureMode.FAIL_CLOSE
    cfg = EnvoyConfig(
        listen_port=listen_port, epp_host=epp_host, epp_port=epp_port, eds_path=eds_path, failure_mode=mode
    )
    typer.echo(yaml.safe_dump(bootstrap(cfg), sort_keys=False))


def _mount_optional() -> None:
    try:
        from inference_gateway.simulator.cli import app as simulate_app
    except ImportError:
        return
    app.add_typer(simulate_app, name="simulate", help="Run one simulated vLLM-compatible model server.")


_mount_optional()
app.add_typer(bench_app, name="bench")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
