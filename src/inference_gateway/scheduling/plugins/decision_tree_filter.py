"""decision-tree filter: run a filter, then branch on whether anything passed.

Parameters (upstream syntax): `current`, and optionally `nextOnSuccess`, `nextOnFailure`,
`nextOnSuccessOrFailure`; each is `{pluginRef: <filter name>}` or `{decisionTree: {...}}`.
On success the survivors go to the next filter; on failure the original input does. Used to
express the pre-scorer default algorithm (low queue -> LoRA affinity -> least queue/KV).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.interfaces import Filter
from inference_gateway.scheduling.registry import PluginHandle
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

_BRANCHES = ("nextOnSuccess", "nextOnFailure", "nextOnSuccessOrFailure")


class DecisionTreeFilter:
    type_name = "decision-tree"

    def __init__(
        self,
        name: str,
        current: Filter,
        on_success: Filter | None = None,
        on_failure: Filter | None = None,
    ) -> None:
        self.name = name
        self.current = current
        self.on_success = on_success
        self.on_failure = on_failure

    @classmethod
    def from_params(cls, name: str, parameters: dict[str, Any], handle: PluginHandle) -> DecisionTreeFilter:
        return _build_tree(name, parameters, handle, depth=0)

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        kept = self.current.filter(state, request, endpoints)
        if kept:
            return self.on_success.filter(state, request, kept) if self.on_success else kept
        return self.on_failure.filter(state, request, endpoints) if self.on_failure else kept


def _build_tree(name: str, params: Any, handle: PluginHandle, depth: int) -> DecisionTreeFilter:
    if depth > 16:
        raise ValueError("decision tree nested deeper than 16 levels")
    if not isinstance(params, dict) or "current" not in params:
        raise ValueError("a decision tree needs a `current` filter")
    unknown = set(params) - {"current", *_BRANCHES}
    if unknown:
        raise ValueError(f"unknown decision tree keys: {', '.join(sorted(unknown))}")
    either = _entry(name, params.get("nextOnSuccessOrFailure"), handle, depth)
    success = _entry(name, params.get("nextOnSuccess"), handle, depth) or either
    failure = _entry(name, params.get("nextOnFailure"), handle, depth) or either
    current = _entry(name, params["current"], handle, depth)
    assert current is not None
    return DecisionTreeFilter(name, current, success, failure)


def _entry(name: str, entry: Any, handle: PluginHandle, depth: int) -> Filter | None:
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise ValueError(f"decision tree entry must be a mapping, got {entry!r}")
    ref, tree = entry.get("pluginRef"), entry.get("decisionTree")
    if ref is not None and tree is not None:
        raise ValueError("a decision tree entry may not set both pluginRef and decisionTree")
    if tree is not None:
        return _build_tree(name, tree, handle, depth + 1)
    if ref is None:
        raise ValueError("a decision tree entry needs pluginRef or decisionTree")
    plugin = handle.plugin(ref)
    if plugin is None:
        raise ValueError(f"{ref!r} is not defined before this decision tree in `plugins`")
    if not isinstance(plugin, Filter):
        raise ValueError(f"{ref!r} is not a filter")
    return plugin
