"""The `flowControl` section of EndpointPickerConfig, with upstream's field names.

Upstream fields: maxBytes, maxRequests (global, across bands), defaultRequestTTL,
defaultPriorityBand (template for unlisted priorities), priorityBands[] with priority, maxBytes,
maxRequests, fairnessPolicyRef, orderingPolicyRef. Ours: enabled (upstream gates flow control
with featureGates: [flowControl]), rejectSheddable, maxConcurrency, recheckInterval, retryAfter.
docs/flowcontrol.md has an annotated example.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from inference_gateway.flowcontrol.policies import (
    DEFAULT_FAIRNESS_POLICY,
    DEFAULT_ORDERING_POLICY,
    FairnessPolicy,
    OrderingPolicy,
    resolve_fairness,
    resolve_ordering,
)

DEFAULT_BAND_MAX_BYTES = 1_000_000_000
DEFAULT_REQUEST_TTL_S = 30.0
PRIORITY_NAMES = {1: "Critical", 0: "Standard", -1: "Sheddable"}


class FlowControlConfigError(ValueError):
    pass


@dataclass(frozen=True)
class PriorityBandConfig:
    priority: int
    name: str
    max_bytes: int = DEFAULT_BAND_MAX_BYTES
    max_requests: int = 0
    fairness: FairnessPolicy = field(default_factory=lambda: resolve_fairness(DEFAULT_FAIRNESS_POLICY))
    ordering: OrderingPolicy = field(default_factory=lambda: resolve_ordering(DEFAULT_ORDERING_POLICY))


@dataclass(frozen=True)
class FlowControlConfig:
    enabled: bool = True
    max_bytes: int = 0
    max_requests: int = 0
    default_request_ttl_s: float | None = DEFAULT_REQUEST_TTL_S
    priority_bands: dict[int, PriorityBandConfig] = field(default_factory=dict)
    default_band: PriorityBandConfig = field(default_factory=lambda: PriorityBandConfig(0, "Default"))
    reject_sheddable: bool = True
    max_concurrency: int = 0
    recheck_interval_s: float = 0.02
    retry_after_s: int = 1

    def band(self, priority: int) -> PriorityBandConfig:
        """The configured band, or one made from the default template (upstream's dynamic bands)."""
        configured = self.priority_bands.get(priority)
        if configured is not None:
            return configured
        t = self.default_band
        return PriorityBandConfig(
            priority, priority_name(priority), t.max_bytes, t.max_requests, t.fairness, t.ordering
        )


def priority_name(priority: int) -> str:
    return PRIORITY_NAMES.get(priority, f"priority-{priority}")


_KNOWN = {
    "enabled",
    "maxBytes",
    "maxRequests",
    "defaultRequestTTL",
    "defaultPriorityBand",
    "priorityBands",
    "rejectSheddable",
    "maxConcurrency",
    "recheckInterval",
    "retryAfter",
}
_BAND_KNOWN = {
    "priority",
    "priorityName",
    "maxBytes",
    "maxRequests",
    "fairnessPolicyRef",
    "orderingPolicyRef",
}


def parse_flow_control(section: Any, plugins: dict[str, Any] | None = None) -> FlowControlConfig:
    """Parse `flowControl` (None: defaults). `plugins` resolves policy refs that name configured plugins."""
    if section is None:
        return FlowControlConfig()
    if not isinstance(section, dict):
        raise FlowControlConfigError("flowControl must be a mapping")
    _reject_unknown(section, _KNOWN, "flowControl")
    plugins = plugins or {}
    raw_template = section.get("defaultPriorityBand") or {}
    template = _parse_band(raw_template, plugins, "flowControl.defaultPriorityBand", 0)
    bands: dict[int, PriorityBandConfig] = {}
    raw_bands = section.get("priorityBands") or []
    if not isinstance(raw_bands, list):
        raise FlowControlConfigError("flowControl.priorityBands must be a list")
    for i, raw in enumerate(raw_bands):
        where = f"flowControl.priorityBands[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("priority"), int):
            raise FlowControlConfigError(f"{where}.priority is required and must be an integer")
        band = _parse_band(raw, plugins, where, raw["priority"], template)
        if band.priority in bands:
            raise FlowControlConfigError(f"{where}: duplicate priority {band.priority}")
        bands[band.priority] = band
    ttl = parse_duration(section.get("defaultRequestTTL"), "flowControl.defaultRequestTTL")
    return FlowControlConfig(
        enabled=_bool(section.get("enabled", True), "flowControl.enabled"),
        max_bytes=parse_quantity(section.get("maxBytes"), "flowControl.maxBytes"),
        max_requests=parse_quantity(section.get("maxRequests"), "flowControl.maxRequests"),
        default_request_ttl_s=DEFAULT_REQUEST_TTL_S if ttl is None else (ttl or None),
        priority_bands=bands,
        default_band=template,
        reject_sheddable=_bool(section.get("rejectSheddable", True), "flowControl.rejectSheddable"),
        max_concurrency=parse_quantity(section.get("maxConcurrency"), "flowControl.maxConcurrency"),
        recheck_interval_s=_positive(section, "recheckInterval", 0.02),
        retry_after_s=max(1, math.ceil(_positive(section, "retryAfter", 1.0))),
    )


def _parse_band(
    raw: Any,
    plugins: dict[str, Any],
    where: str,
    priority: int,
    template: PriorityBandConfig | None = None,
) -> PriorityBandConfig:
    if not isinstance(raw, dict):
        raise FlowControlConfigError(f"{where} must be a mapping")
    _reject_unknown(raw, _BAND_KNOWN, where)
    base = template or PriorityBandConfig(priority, priority_name(priority))
    try:
        fairness = resolve_fairness(raw["fairnessPolicyRef"], plugins) if "fairnessPolicyRef" in raw else None
        ordering = resolve_ordering(raw["orderingPolicyRef"], plugins) if "orderingPolicyRef" in raw else None
    except ValueError as exc:
        raise FlowControlConfigError(f"{where}: {exc}") from None
    max_bytes = parse_quantity(raw.get("maxBytes"), f"{where}.maxBytes")
    max_requests = parse_quantity(raw.get("maxRequests"), f"{where}.maxRequests")
    return PriorityBandConfig(
        priority=priority,
        name=str(raw.get("priorityName") or priority_name(priority)),
        max_bytes=max_bytes if "maxBytes" in raw else base.max_bytes,
        max_requests=max_requests if "maxRequests" in raw else base.max_requests,
        fairness=fairness or base.fairness,
        ordering=ordering or base.ordering,
    )


def _reject_unknown(raw: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise FlowControlConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise FlowControlConfigError(f"{where} must be true or false, got {value!r}")
    return value


def _positive(section: dict[str, Any], key: str, default: float) -> float:
    value = parse_duration(section.get(key), f"flowControl.{key}")
    if value is None:
        return default
    if value <= 0:
        raise FlowControlConfigError(f"flowControl.{key} must be positive")
    return value


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?(?:[eE][0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_SUFFIX = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def parse_quantity(value: Any, where: str) -> int:
    """A Kubernetes resource quantity ("500M", "1Gi", 1000) as an integer; None is 0."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise FlowControlConfigError(f"{where}: expected a quantity, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    else:
        m = _QUANTITY.match(str(value).strip())
        if not m:
            raise FlowControlConfigError(f"{where}: {value!r} is not a quantity (e.g. 1000, 500M, 1Gi)")
        number = float(m.group(1)) * _SUFFIX[m.group(2)]
    if number < 0:
        raise FlowControlConfigError(f"{where} must not be negative")
    return math.ceil(number)


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any, where: str) -> float | None:
    """A Go/metav1 duration ("30s", "1m30s", "250ms") or a number of seconds; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise FlowControlConfigError(f"{where}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip()
        parts = _DURATION_PART.findall(text)
        if text == "0":
            return 0.0
        if not parts or "".join(n + u for n, u in parts) != text:
            raise FlowControlConfigError(f"{where}: {value!r} is not a duration (e.g. 30s, 250ms, 1m30s)")
        seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if seconds < 0:
        raise FlowControlConfigError(f"{where} must not be negative")
    return seconds
