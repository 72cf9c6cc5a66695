"""A copy of examples/multi-pool with this test's own ports and loopback addresses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import copy_config, worker_index

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi-pool"

_counter = iter(range(1, 1000))


def multi_pool_config(tmp: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    # 127.200+.x.y: clear of tests/conftest.py's 127.100-199 subnets.
    subnet = 200 + (worker_index() * 4 + next(_counter)) % 50
    return copy_config(EXAMPLE, tmp, subnet, edit)
