"""Which asyncio event loop a process runs on: uvloop when installed (the default), or asyncio.

The EPP (`--event-loop`), and the benchmark's own instant backend and no-op ext_proc, which
share the machine with the gateway they measure: uvloop spends less CPU per request on the same
work. (The load generator runs on asyncio: on uvloop 0.23 it crashed now and then.)
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any


def loop_runner(kind: str = "auto") -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """asyncio.run, or uvloop.run for "uvloop" (and for "auto" when uvloop is installed)."""
    if kind == "uvloop" or (kind == "auto" and has_uvloop()):
        import uvloop

        return uvloop.run
    return asyncio.run


def has_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None
