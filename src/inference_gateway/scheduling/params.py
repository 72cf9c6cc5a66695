"""Typed reads of plugin `parameters`, with errors that name the key and what was expected."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def get_int(params: Mapping[str, Any], key: str, default: int, minimum: int | None = None) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"parameter {key!r} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"parameter {key!r} must be >= {minimum}, got {value}")
    return value


def get_float(
    params: Mapping[str, Any],
    key: str,
    default: float,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"parameter {key!r} must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"parameter {key!r} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"parameter {key!r} must be <= {maximum}, got {value}")
    return float(value)


def get_bool(params: Mapping[str, Any], key: str, default: bool) -> bool:
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"parameter {key!r} must be true or false, got {value!r}")
    return value


def get_str(params: Mapping[str, Any], key: str, default: str) -> str:
    value = params.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"parameter {key!r} must be a string, got {value!r}")
    return value


def get_duration_s(params: Mapping[str, Any], key: str, default_s: float) -> float:
    """A Go-style duration ("2s", "100ms", "1m30s") or a number of seconds."""
    value = params.get(key)
    if value is None:
        return default_s
    return parse_duration_s(value, key)


def parse_duration_s(value: Any, key: str = "duration") -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value and _DURATION.sub("", value) == "":
        seconds = sum(float(n) * _UNIT_S[u] for n, u in _DURATION.findall(value))
    else:
        raise ValueError(f"parameter {key!r} must be a duration like '2s' or '100ms', got {value!r}")
    if seconds < 0:
        raise ValueError(f"parameter {key!r} must not be negative, got {value!r}")
    return seconds


def reject_unknown(params: Mapping[str, Any], known: frozenset[str]) -> None:
    """Strict parameters: a key the plugin does not read is a typo, not a silent default."""
    unknown = set(params) - known
    if unknown:
        names, allowed = ", ".join(sorted(unknown)), ", ".join(sorted(known))
        raise ValueError(f"unknown parameter(s) {names} (known: {allowed})")
