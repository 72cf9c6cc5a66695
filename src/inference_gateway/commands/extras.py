"""Lab commands (`simulate`, `bench`, `up`) behind the optional extras, loaded only when invoked.

`pip install inference-gateway` is the product: the EPP, its CLI and the Envoy helper. The
simulator and the benchmark harness come with the extras `[sim]` and `[bench]`; their
modules are imported only when one of their commands runs, so `inference-gateway epp` never
loads them (nor numpy/matplotlib), and a missing extra is one line naming what to install.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup


@dataclass(frozen=True)
class Extra:
    name: str
    modules: tuple[str, ...]  # imported to prove the extra is installed

    def missing(self) -> str | None:
        """The first of `modules` that cannot be imported, or None when the extra is usable."""
        for module in self.modules:
            try:
                importlib.import_module(module)
            except ImportError:
                return module
        return None

    def hint(self, command: str, module: str) -> str:
        return (
            f"`inference-gateway {command}` needs the {self.name} extra ({module} is not installed): "
            f"pip install 'inference-gateway[{self.name}]'"
        )


SIM = Extra("sim", ("inference_gateway.simulator.server",))
BENCH = Extra("bench", ("inference_gateway.simulator.server", "numpy", "matplotlib", "pydantic"))


@dataclass(frozen=True)
class LabApp:
    """A Typer sub-application that lives in a lab package."""

    module: str
    attribute: str
    extra: Extra
    help: str


LAB_APPS = {
    "bench": LabApp(
        "inference_gateway.bench.cli", "bench_app", BENCH, "Benchmarks: EPP vs round robin, gateway overhead."
    ),
    "simulate": LabApp(
        "inference_gateway.simulator.cli", "app", SIM, "Run one simulated vLLM-compatible model server."
    ),
}


def require(extra: Extra, command: str) -> None:
    """Stop the command with one line naming the extra to install, when it is missing."""
    module = extra.missing()
    if module is not None:
        typer.echo(f"error: {extra.hint(command, module)}", err=True)
        raise typer.Exit(2)


def _unavailable(name: str, lab: LabApp) -> Any:
    """A stand-in command that only says which extra to install (every argument accepted)."""
    stub = typer.Typer(add_completion=False)

    @stub.command(
        name,
        help=escape(f"{lab.help} (needs pip install 'inference-gateway[{lab.extra.name}]')"),
        short_help=escape(f"(not installed: pip install 'inference-gateway[{lab.extra.name}]')"),
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
        add_help_option=False,
    )
    def fail() -> None:
        require(lab.extra, name)

    return typer.main.get_command(stub)


class ProductGroup(TyperGroup):
    """The root command: product commands as usual, lab sub-apps imported on first use."""

    # Typer may vendor its own click; `Any` keeps these overrides valid with either.
    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *LAB_APPS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        lab = LAB_APPS.get(cmd_name)
        if lab is None:
            return super().get_command(ctx, cmd_name)
        if lab.extra.missing() is not None:
            return _unavailable(cmd_name, lab)
        sub_app: Any = getattr(importlib.import_module(lab.module), lab.attribute)
        command = typer.main.get_group(sub_app)
        command.name = cmd_name
        command.help = command.help or lab.help
        command.short_help = lab.help
        return command
