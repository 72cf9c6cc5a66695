"""Shared fixtures: a whole local stack (simulated pods + EPP + real Envoy) per test module."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from inference_gateway.local.stack import LocalStack, StackOptions, free_port

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "local"


def worker_index() -> int:
    """A small integer per pytest-xdist worker, so parallel stacks use distinct loopback IPs."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name.removeprefix("gw") or 0)


_stack_counter = iter(range(1, 200))


def make_config_dir(tmp: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Copy examples/local into `tmp` with unique addresses/ports; `edit` may change any object."""
    subnet = 100 + worker_index() * 8 + next(_stack_counter) % 8
    return copy_config(EXAMPLES, tmp, subnet, edit)


def copy_config(
    source: Path, tmp: Path, subnet: int, edit: Callable[[dict[str, Any]], None] | None = None
) -> Path:
    """Copy a config dir; pods get addresses 127.<subnet>.<group>.N and the pools a free port."""
    target_port = free_port()
    out = tmp / "config"
    shutil.copytree(source, out)
    for file in out.glob("*.yaml"):
        docs = [d for d in yaml.safe_load_all(file.read_text()) if d]
        for doc in docs:
            if doc["kind"] == "InferencePool":
                doc["spec"]["targetPorts"] = [{"number": target_port}]
            if doc["kind"] == "LocalFleet":
                for i, group in enumerate(doc["spec"]["pods"]):
                    group["addressBase"] = f"127.{subnet}.{i + 1}.1"
            if edit:
                edit(doc)
        file.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return out


async def start_stack(config_dir: Path, time_scale: float = 0.05, **kw: Any) -> LocalStack:
    stack = LocalStack(
        StackOptions(
            config_dir=config_dir,
            gateway_port=0,
            epp_port=0,
            metrics_port=0,
            health_port=0,
            time_scale=time_scale,
            **kw,
        )
    )
    await stack.start()
    return stack


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[LocalStack]:
    s = await start_stack(make_config_dir(tmp_path))
    try:
        yield s
    finally:
        await s.stop()
