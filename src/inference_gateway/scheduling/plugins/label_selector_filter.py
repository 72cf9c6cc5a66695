"""label-selector-filter (alias by-label-selector): keep endpoints whose pod labels match a
Kubernetes LabelSelector, as llm-d's filter does.

Parameters are a metav1.LabelSelector: `matchLabels` {key: value} and `matchExpressions`
[{key, operator: In|NotIn|Exists|DoesNotExist, values}]; all must hold. An empty selector
keeps every endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

Requirement = Callable[[Mapping[str, str]], bool]


def _requirement(expr: Any, where: str) -> Requirement:
    if not isinstance(expr, dict) or not isinstance(expr.get("key"), str):
        raise ValueError(f"{where}.key is required")
    key, op, values = expr["key"], expr.get("operator"), expr.get("values") or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{where}.values must be a list of strings")
    allowed = frozenset(values)
    if op in ("In", "NotIn") and not allowed:
        raise ValueError(f"{where}: operator {op} needs values")
    if op in ("Exists", "DoesNotExist") and allowed:
        raise ValueError(f"{where}: operator {op} takes no values")
    checks: dict[Any, Requirement] = {
        "In": lambda labels: labels.get(key) in allowed,
        "NotIn": lambda labels: labels.get(key) not in allowed,
        "Exists": lambda labels: key in labels,
        "DoesNotExist": lambda labels: key not in labels,
    }
    if op not in checks:
        raise ValueError(f"{where}.operator: {op!r} is not a valid label selector operator")
    return checks[op]


class LabelSelectorFilter:
    type_name = "label-selector-filter"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name
        unknown = set(params) - {"matchLabels", "matchExpressions"}
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))} (a LabelSelector)")
        match_labels = params.get("matchLabels") or {}
        if not isinstance(match_labels, dict):
            raise ValueError("parameter 'matchLabels' must be a mapping")
        exprs = params.get("matchExpressions") or []
        if not isinstance(exprs, list):
            raise ValueError("parameter 'matchExpressions' must be a list")
        self.requirements: list[Requirement] = [
            _requirement({"key": k, "operator": "In", "values": [str(v)]}, f"matchLabels.{k}")
            for k, v in match_labels.items()
        ]
        self.requirements += [_requirement(e, f"matchExpressions[{i}]") for i, e in enumerate(exprs)]

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        checks = self.requirements
        return [e for e in endpoints if all(check(e.labels) for check in checks)]


class ByLabelSelector(LabelSelectorFilter):
    """llm-d's deprecated name for label-selector-filter."""

    type_name = "by-label-selector"
