"""`inference-gateway up`: what it checks before starting, and what it tells the user."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from inference_gateway.commands.epp_flags import go_duration
from inference_gateway.commands.errors import UsageError, ensure_ports_free
from inference_gateway.local.stack import LocalStack, StackOptions


@dataclass
class UpFlags:
    config: Path
    port: int | None = None
    epp_port: int | None = None
    metrics_port: int | None = None
    health_port: int | None = None
    epp_config: Path | None = None
    time_scale: float | None = None
    tls: bool = False
    keep: bool = False
    scrape_interval: str | None = None  # Go-style durations, as the epp command's flags
    staleness: str | None = None
    scrape_timeout: str | None = None


def _scrape_overrides(flags: UpFlags) -> dict[str, float]:
    given = {
        "interval_s": ("--refresh-metrics-interval", flags.scrape_interval),
        "stale_after_s": ("--metrics-staleness-threshold", flags.staleness),
        "timeout_s": ("--metrics-scrape-timeout", flags.scrape_timeout),
    }
    out: dict[str, float] = {}
    for key, (name, text) in given.items():
        if text is None:
            continue
        try:
            seconds = go_duration(text)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise UsageError(f"{name}: {exc}") from None
        if seconds <= 0:
            raise UsageError(f"{name}: must be > 0, got {text!r}")
        out[key] = seconds
    return out


def build_stack(flags: UpFlags) -> LocalStack:
    if not flags.config.exists():
        raise UsageError(f"{flags.config}: no such directory (--config); try --config examples/local")
    epp_config = None
    if flags.epp_config is not None:
        if not flags.epp_config.is_file():
            raise UsageError(f"{flags.epp_config}: no such file (--epp-config)")
        epp_config = flags.epp_config.read_text()
    options = StackOptions(
        config_dir=flags.config,
        gateway_port=flags.port,
        epp_port=flags.epp_port,
        metrics_port=flags.metrics_port,
        health_port=flags.health_port,
        time_scale=flags.time_scale,
        epp_config=epp_config,
        epp_config_source=str(flags.epp_config or "--epp-config"),
        tls=flags.tls,
        keep_workdir=flags.keep,
        scrape_overrides=_scrape_overrides(flags),
        restart_pods=True,
    )
    stack = LocalStack(options)  # parses every file, so mistakes surface before anything starts
    try:
        ensure_ports_free("127.0.0.1", stack.listen_ports())
    except UsageError:
        shutil.rmtree(stack.workdir, ignore_errors=True)
        raise
    return stack


def run_up(flags: UpFlags, console: Console) -> None:
    stack = build_stack(flags)

    async def main() -> str:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopped.set)
        try:
            await stack.start()
            _announce(stack, console)
            return await _until_stopped_or_envoy_exits(stack, stopped)
        finally:
            await stack.stop()

    failure = asyncio.run(main())
    if flags.keep:
        console.print(f"kept {stack.workdir}", soft_wrap=True, highlight=False)
    console.print("stopped; all child processes are gone.")
    if failure:
        raise UsageError(failure)


async def _until_stopped_or_envoy_exits(stack: LocalStack, stopped: asyncio.Event) -> str:
    """'' after Ctrl-C; a message if Envoy died (the gateway is gone, so `up` ends too)."""
    assert stack.envoy is not None and stack.envoy.proc is not None
    envoy = stack.envoy
    signalled = asyncio.create_task(stopped.wait())
    exited = asyncio.create_task(envoy.proc.wait())  # type: ignore[union-attr]
    done, pending = await asyncio.wait({signalled, exited}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if exited in done and not stopped.is_set():
        return f"Envoy exited with status {exited.result()}; the last lines of its log:\n{envoy.log_tail(5)}"
    return ""


def _announce(stack: LocalStack, console: Console) -> None:
    def say(text: str) -> None:
        # soft_wrap: a long line stays one line, so it can be pasted into a shell.
        console.print(text, soft_wrap=True, highlight=False)

    models = sorted({m.model_name for m in stack.resources.models})
    say(f"\n[green]inference-gateway is up.[/green] OpenAI base URL: [bold]{stack.base_url}[/bold]")
    say(f"  pods: {', '.join(a for p in stack.pods for a in p.addresses)}")
    say(f"  models: {', '.join(models)}")
    epp = stack.epp
    if epp is not None:
        tls = " (mTLS)" if stack.pki is not None else ""
        say(f"  EPP: ext_proc 127.0.0.1:{epp.port}{tls}, metrics and status page {stack.status_url}")
    if stack.envoy is not None:
        say(f"  Envoy: admin http://127.0.0.1:{stack.envoy.admin_port}, log {stack.envoy.log_path}")
    example = models[0] if models else "MODEL"
    say(
        f"  try: curl -s {stack.base_url}/completions -H 'content-type: application/json' "
        f'-d \'{{"model": "{example}", "prompt": "Hello", "max_tokens": 20}}\''
    )
    say("  Ctrl-C to stop.\n")
