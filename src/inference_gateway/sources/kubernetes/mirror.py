"""The controller's copy of what the cluster holds: raw objects and their parsed forms.

Raw objects are kept for status comparisons; parsed ones are what the datastore gets. A
pod only counts once it is Ready with an IP and not being deleted, so pods that lose
readiness or start terminating leave the pool's endpoints at once.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inference_gateway.api.manifests import (
    ResourceSet,
    parse_model,
    parse_objective,
    parse_pod,
    parse_pool,
    parse_rewrite,
)
from inference_gateway.api.types import (
    InferenceModel,
    InferenceModelRewrite,
    InferenceObjective,
    InferencePool,
    ObjectRef,
    Pod,
)
from inference_gateway.sources.kubernetes.client import INFERENCE_GROUP

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Parsed = InferencePool | InferenceModel | InferenceObjective | InferenceModelRewrite | Pod


class Kind(enum.StrEnum):
    POOL = "pool"
    MODELS = "models"
    OBJECTIVES = "objectives"
    REWRITES = "rewrites"
    PODS = "pods"
    ROUTES = "routes"  # HTTPRoutes, only for InferencePool status


_PARSERS: dict[Kind, tuple[Callable[..., Any], type]] = {
    Kind.POOL: (parse_pool, InferencePool),
    Kind.MODELS: (parse_model, InferenceModel),
    Kind.OBJECTIVES: (parse_objective, InferenceObjective),
    Kind.REWRITES: (parse_rewrite, InferenceModelRewrite),
    Kind.PODS: (parse_pod, Pod),
}


def ref_of(obj: Obj) -> ObjectRef:
    meta = obj.get("metadata") or {}
    return ObjectRef(meta.get("namespace", ""), meta.get("name", ""))


def datastore_type(kind: Kind) -> type | None:
    entry = _PARSERS.get(kind)
    return entry[1] if entry else None


@dataclass
class Mirror:
    namespace: str
    raw: dict[Kind, dict[ObjectRef, Obj]] = field(default_factory=lambda: {k: {} for k in Kind})
    parsed: dict[Kind, dict[ObjectRef, Parsed]] = field(default_factory=lambda: {k: {} for k in _PARSERS})

    def replace(self, kind: Kind, items: list[Obj]) -> None:
        self.raw[kind] = {ref_of(o): o for o in items}
        if kind in self.parsed:
            parsed = ((ref, self._parse(kind, o)) for ref, o in self.raw[kind].items())
            self.parsed[kind] = {ref: p for ref, p in parsed if p is not None}

    def apply(self, kind: Kind, event: str, obj: Obj) -> tuple[Parsed | None, bool]:
        """Record one watch event -> (the parsed object to upsert or None, whether it was present)."""
        ref = ref_of(obj)
        was_present = ref in self.parsed.get(kind, {})
        if event == "DELETED":
            self.raw[kind].pop(ref, None)
            self.parsed.get(kind, {}).pop(ref, None)
            return None, was_present
        self.raw[kind][ref] = obj
        if kind not in self.parsed:
            return None, False
        parsed = self._parse(kind, obj)
        if parsed is None:
            self.parsed[kind].pop(ref, None)
        else:
            self.parsed[kind][ref] = parsed
        return parsed, was_present

    def clear(self, kind: Kind) -> None:
        self.raw[kind] = {}
        if kind in self.parsed:
            self.parsed[kind] = {}

    def resource_set(self) -> ResourceSet:
        p = self.parsed
        return ResourceSet(
            pools=list(p[Kind.POOL].values()),  # type: ignore[arg-type]
            models=list(p[Kind.MODELS].values()),  # type: ignore[arg-type]
            objectives=list(p[Kind.OBJECTIVES].values()),  # type: ignore[arg-type]
            rewrites=list(p[Kind.REWRITES].values()),  # type: ignore[arg-type]
            pods=list(p[Kind.PODS].values()),  # type: ignore[arg-type]
        )

    def _parse(self, kind: Kind, obj: Obj) -> Parsed | None:
        parser, _ = _PARSERS[kind]
        parsed, reader = parser(obj, self.namespace)
        if reader.errors:
            log.warning(
                "ignoring invalid %s %s: %s",
                kind.value,
                ref_of(obj),
                "; ".join(str(e) for e in reader.errors),
            )
            return None
        if kind is Kind.PODS and (not parsed.ready or (obj.get("metadata") or {}).get("deletionTimestamp")):
            return None
        result: Parsed = parsed
        return result


SELECTOR_POOL_NAME = "endpoint-selector"


def selector_pool(ref: ObjectRef, selector: str, ports: tuple[int, ...]) -> Obj:
    """The InferencePool that --endpoint-selector/--endpoint-target-ports stand for."""
    labels: dict[str, str] = {}
    for pair in selector.split(","):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--endpoint-selector: {pair!r} is not key=value")
        labels[key.strip()] = value.strip()
    return {
        "apiVersion": f"{INFERENCE_GROUP}/v1",
        "kind": "InferencePool",
        "metadata": {"name": ref.name, "namespace": ref.namespace, "resourceVersion": "1"},
        "spec": {
            "selector": {"matchLabels": labels},
            "targetPorts": [{"number": p} for p in ports],
            "endpointPickerRef": {"name": ref.name, "port": {"number": 9002}},
        },
    }
