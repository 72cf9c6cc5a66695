"""The `inference-gateway` command line."""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from inference_gateway.commands.errors import UsageError, ensure_ports_free
from inference_gateway.commands.extras import SIM, ProductGroup, require

if TYPE_CHECKING:
    from inference_gateway.commands.epp import EPPCommand

app = typer.Typer(
    cls=ProductGroup,
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
    port: Annotated[
        int | None, typer.Option(help="Gateway listen port (default from LocalFleet; 0: any free port)")
    ] = None,
    epp_port: Annotated[int | None, typer.Option(help="EPP gRPC port (default from LocalFleet)")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="EPP /metrics and status page port (default from LocalFleet, 9090)")
    ] = None,
    health_port: Annotated[int | None, typer.Option(help="EPP gRPC health port (default 9003)")] = None,
    epp_config: Annotated[Path | None, typer.Option(help="EndpointPickerConfig YAML")] = None,
    time_scale: Annotated[float | None, typer.Option(help="Simulator time scale (0.1 = 10x faster)")] = None,
    tls: Annotated[
        bool, typer.Option(help="mTLS between Envoy and the EPP (certificates minted per run)")
    ] = False,
    keep: Annotated[
        bool, typer.Option(help="Keep the work dir (Envoy config and log, certificates) after exit")
    ] = False,
    refresh_metrics_interval: Annotated[
        str | None, typer.Option(help="EPP scrape interval, Go duration (default 50ms)")
    ] = None,
    metrics_staleness_threshold: Annotated[
        str | None, typer.Option(help="Metrics older than this are stale (default 2s)")
    ] = None,
    metrics_scrape_timeout: Annotated[
        str | None, typer.Option(help="Give up on one scrape after this (default 1s)")
    ] = None,
    log_level: LogLevel = "info",
) -> None:
    """Run simulated model servers, the EPP and a real Envoy on loopback until Ctrl-C."""
    require(SIM, "up")
    from inference_gateway.commands.up import UpFlags, run_up

    setup_logging(log_level)
    flags = UpFlags(
        config, port, epp_port, metrics_port, health_port, epp_config, time_scale, tls, keep,
        refresh_metrics_interval, metrics_staleness_threshold, metrics_scrape_timeout,
    )  # fmt: skip
    run_up(flags, console)


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="YAML files or directories (searched recursively)")],
) -> None:
    """Check manifests with the EPP's own loader; print every error as file:line:column."""
    from inference_gateway.commands.validate import validate_paths

    problems, summary = validate_paths(paths)
    for line in problems:
        typer.echo(line)
    for line in summary:
        console.print(line, soft_wrap=True, highlight=False)
    if problems:
        console.print(f"[red]invalid:[/red] {len(problems)} error(s)")
        raise typer.Exit(1)


@app.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
def epp(ctx: typer.Context) -> None:
    """Run the Endpoint Picker (upstream's EPP flags; `epp --help` lists them), fed by Kubernetes or files."""
    from inference_gateway.commands.epp import run_blocking
    from inference_gateway.commands.epp_flags import parse, use_json_logs

    try:
        flags = parse(ctx.args)
    except OSError as exc:  # --config-file unreadable
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    setup_logging(flags.log_level)
    if flags.json_logs:
        use_json_logs()
    from inference_gateway.commands.workers import WORKER_ENV, WorkerSlot, supervise, worker_command

    slot = WorkerSlot.from_env(os.environ.get(WORKER_ENV))
    for warning in flags.warnings if slot is None else ():  # a worker's are its supervisor's
        logging.getLogger("inference_gateway.commands.epp").warning("%s", warning)
    cmd = flags.command
    try:
        cmd.validate()
        if slot is None:  # the supervisor checked the ports its workers share
            ensure_ports_free(cmd.host, _epp_ports(cmd))
    except (ValueError, UsageError) as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    if slot is not None:
        run_blocking(worker_command(cmd, slot))
    elif cmd.workers > 1:
        raise typer.Exit(asyncio.run(supervise(ctx.args, cmd)))
    else:
        run_blocking(cmd)


def _epp_ports(cmd: EPPCommand) -> dict[str, int]:
    ports = {"--grpc-port": cmd.grpc_port, "--grpc-health-port": cmd.health_port}
    for i in range(cmd.workers):  # worker i serves /metrics on --metrics-port + i
        name = "--metrics-port" + (f" + {i} (worker {i})" if i else "")
        ports[name] = cmd.metrics_port + i if cmd.metrics_port else 0
    return ports


class ResponsePhases(enum.StrEnum):
    ACCESS_LOG = "access-log"
    OBSERVE = "observe"
    SEND = "send"


@app.command("envoy-config")
def envoy_config(
    resources: Annotated[
        Path | None, typer.Option(help="The EPP's resources folder: pools, pods (endpoints), HTTPRoutes")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write envoy.yaml and xds/ endpoint files here (default: print)")
    ] = None,
    epp_host: Annotated[str, typer.Option(help="Where Envoy reaches the EPP")] = "127.0.0.1",
    epp_port: Annotated[int, typer.Option(help="EPP gRPC port")] = 9002,
    listen_host: Annotated[str, typer.Option(help="Gateway listen address (0.0.0.0: all)")] = "127.0.0.1",
    listen_port: Annotated[int, typer.Option(help="Gateway listen port")] = 8081,
    admin_port: Annotated[int, typer.Option(help="Envoy admin port on 127.0.0.1 (0: any free)")] = 9901,
    eds_path: Annotated[
        str, typer.Option(help="Endpoint (EDS) file the bootstrap reads, when printing (--out sets it)")
    ] = "/etc/envoy/xds/eds.yaml",
    fail_open: Annotated[
        bool | None, typer.Option("--fail-open/--fail-close", help="Default: the pools' failureMode")
    ] = None,
    round_robin: Annotated[
        bool, typer.Option(help="No EPP: plain round robin (the baseline to compare against)")
    ] = False,
    tls: Annotated[bool, typer.Option(help="mTLS to the EPP; mints certificates into --out/pki")] = False,
    tls_ca: Annotated[Path | None, typer.Option(help="CA that signed the EPP's certificate")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="Envoy's client certificate")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Envoy's client key")] = None,
    tls_sni: Annotated[str, typer.Option(help="Name the EPP's certificate is for")] = "localhost",
    epp_plaintext: Annotated[
        bool, typer.Option(help="No TLS to the EPP (for `epp --secure-serving=false`)")
    ] = False,
    response_phases: Annotated[
        ResponsePhases,
        typer.Option(
            help="How responses reach the EPP: access-log (batched, off the request path), observe "
            "(an observability-mode ext_proc stream per request), send (through the EPP, upstream's way)"
        ),
    ] = ResponsePhases.ACCESS_LOG,
    access_log_flush_ms: Annotated[
        int,
        typer.Option(min=1, help="access-log: longest wait before Envoy sends finished requests to the EPP"),
    ] = 10,
) -> None:
    """Write (or print) an Envoy setup that puts the EPP on the request path (docs/own-envoy.md)."""
    from inference_gateway.commands.envoy_setup import EnvoySetupFlags, build_setup, dump, write_setup

    flags = EnvoySetupFlags(
        listen_host,
        listen_port,
        admin_port,
        epp_host,
        epp_port,
        eds_path,
        fail_open,
        round_robin,
        resources,
        out,
        tls,
        tls_ca,
        tls_cert,
        tls_key,
        tls_sni,
        epp_plaintext,
        response_phases.value,
        access_log_flush_ms,
    )
    setup = build_setup(flags)
    if out is None:
        typer.echo(dump(setup.config))
    else:
        from inference_gateway.api.manifests import load_path

        written = write_setup(setup, out, load_path(resources) if resources else None)
        for path in written:
            console.print(f"wrote {path}", soft_wrap=True, highlight=False)
        console.print(f"run: envoy -c {written[0]} --use-dynamic-base-id", soft_wrap=True, highlight=False)
    admin = f"127.0.0.1:{admin_port}" if admin_port else "a free port (Envoy's --admin-address-path)"
    console.print(f"Envoy admin: {admin}; gateway: http://{listen_host}:{listen_port}/v1", highlight=False)
    for note in setup.notes:
        console.print(note, soft_wrap=True, highlight=False)


def _version(value: bool) -> None:
    if value:
        from inference_gateway import __version__

        typer.echo(f"inference-gateway {__version__}")
        raise typer.Exit()


@dataclass
class RunFlags:
    debug: bool = False


@app.callback()
def root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option(help="Show tracebacks for errors")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version")
    ] = False,
) -> None:
    if isinstance(ctx.obj, RunFlags):
        ctx.obj.debug = debug


def main() -> None:
    flags = RunFlags()
    try:
        app(obj=flags)
    except Exception as exc:  # user mistakes and runtime failures: one line, unless --debug
        if flags.debug:
            raise
        from inference_gateway.commands.errors import one_line

        console.print(f"[red]error:[/red] {one_line(exc)}", soft_wrap=True, highlight=False)
        console.print("(run with --debug for the traceback)", style="dim")
        sys.exit(2)


if __name__ == "__main__":
    main()
