"""A copy of examples/multi-pool with this test's own ports and loopback addresses."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from inference_gateway.local.stack import free_port
from tests.conftest import worker_index

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi-pool"

_counter = iter(range(1, 1000))


def multi_pool_config(tmp: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    target_port = free_port()
    # 127.200+.x.y: clear of tests/conftest.py's 127.100-199 subnets.
    subnet = 200 + (worker_index() * 4 + next(_counter)) % 50
    out = tmp / "config"
    shutil.copytree(EXAMPLE, out)
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
