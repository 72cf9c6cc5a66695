"""The object store behind the in-test Kubernetes API server.

It keeps what etcd and the apiserver's watch cache keep: objects per resource, one global
resourceVersion counter, and an event history that watches resume from. `compact()` drops
the history, so a watch from an older resourceVersion gets 410 Gone as on a real cluster.
"""

from __future__ import annotations

import copy
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Resource:
    """One served resource: where it lives in the URL space and what it stores."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status_subresource: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


DEFAULT_RESOURCES = (
    Resource("", "v1", "pods", "Pod"),
    Resource("", "v1", "services", "Service"),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", status_subresource=False),
    Resource("inference.networking.k8s.io", "v1", "inferencepools", "InferencePool"),
    Resource("inference.networking.x-k8s.io", "v1alpha2", "inferencepools", "InferencePool"),
    Resource("inference.networking.x-k8s.io", "v1alpha2", "inferencemodels", "InferenceModel"),
    Resource("inference.networking.x-k8s.io", "v1alpha2", "inferenceobjectives", "InferenceObjective"),
    Resource("inference.networking.x-k8s.io", "v1alpha2", "inferencemodelrewrites", "InferenceModelRewrite"),
    Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute"),
    Resource("gateway.networking.k8s.io", "v1", "gateways", "Gateway"),
)


class ApiError(Exception):
    """An error the server answers with a `Status` object."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    def status(self) -> Obj:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


@dataclass(frozen=True, slots=True)
class Event:
    rv: int
    resource: Resource
    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj
    old: Obj | None = None  # the previous state, so filtered watches see objects leave/enter

    def seen_as(self, match: Callable[[Obj], bool]) -> str | None:
        """The event a watch filtered by `match` gets, as the apiserver's watch cache sends it."""
        now = match(self.obj)
        before = self.old is not None and match(self.old)
        if self.type == "MODIFIED":
            if now and before:
                return "MODIFIED"
            if now:
                return "ADDED"
            return "DELETED" if before else None
        return self.type if now else None


# --- selectors -------------------------------------------------------------
_SET_RE = re.compile(r"^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$")


def _split_selector(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def _requirement(term: str) -> Callable[[dict[str, str]], bool]:
    match = _SET_RE.match(term)
    if match:
        key, op, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (s.strip() for s in term.split(op, 1))
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        return lambda labels: term[1:].strip() not in labels
    return lambda labels: term in labels


def label_matcher(selector: str | None) -> Callable[[Obj], bool]:
    """Kubernetes label selector syntax: `a=b,c!=d,e in (x,y),f notin (z),g,!h`."""
    reqs = [_requirement(t) for t in _split_selector(selector or "")]
    return lambda obj: all(r(obj.get("metadata", {}).get("labels") or {}) for r in reqs)


def field_matcher(selector: str | None) -> Callable[[Obj], bool]:
    """Field selectors on metadata.name / metadata.namespace (`=`, `==`, `!=`)."""
    checks: list[Callable[[Obj], bool]] = []
    for term in _split_selector(selector or ""):
        negate = "!=" in term
        key, value = (s.strip() for s in re.split(r"!=|==|=", term, maxsplit=1))
        path = key.split(".")

        def check(obj: Obj, path: list[str] = path, value: str = value, negate: bool = negate) -> bool:
            node: Any = obj
            for part in path:
                node = node.get(part) if isinstance(node, dict) else None
            return (str(node) == value) != negate

        checks.append(check)
    return lambda obj: all(c(obj) for c in checks)


# --- patches ---------------------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (also used for strategic-merge bodies)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Obj, ops: list[Obj]) -> Obj:
    """RFC 6902 add / replace / remove (what clients send for status and label edits)."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1]
        if op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if op["op"] == "add":
                parent.insert(index, op["value"])
            else:
                parent[index] = op["value"]
        else:
            parent[last] = op["value"]
    return doc


# --- the store -------------------------------------------------------------
@dataclass
class ObjectStore:
    """Thread-safe objects + history. Watchers wait on `changed`."""

    resources: tuple[Resource, ...] = DEFAULT_RESOURCES
    rv: int = 1
    compacted_rv: int = 0
    history_limit: int = 10_000
    history: list[Event] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    _objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = field(default_factory=dict)

    def find(self, group: str, version: str, plural: str) -> Resource:
        for res in self.resources:
            if (res.group, res.version, res.plural) == (group, version, plural):
                return res
        raise ApiError(404, "NotFound", f"the server could not find the requested resource ({plural})")

    def for_kind(self, api_version: str, kind: str) -> Resource:
        group, _, version = api_version.rpartition("/")
        for res in self.resources:
            if (res.group, res.version, res.kind) == (group, version, kind):
                return res
        raise ApiError(404, "NotFound", f"no resource for {api_version} {kind}")

    def _table(self, res: Resource) -> dict[tuple[str, str], Obj]:
        # One table per group+plural: every served version shares the stored objects.
        return self._objects.setdefault((res.group, res.plural), {})

    def list(
        self, res: Resource, namespace: str | None, match: Callable[[Obj], bool]
    ) -> tuple[list[Obj], int]:
        with self.changed:
            items = [
                copy.deepcopy(o)
                for (ns, _), o in sorted(self._table(res).items())
                if (namespace is None or ns == namespace) and match(o)
            ]
            return [self._as_version(res, o) for o in items], self.rv

    def get(self, res: Resource, namespace: str, name: str) -> Obj:
        with self.changed:
            obj = self._table(res).get((namespace, name))
            if obj is None:
                raise ApiError(404, "NotFound", f'{res.plural} "{name}" not found')
            return self._as_version(res, copy.deepcopy(obj))

    def create(self, res: Resource, namespace: str, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        name = meta.get("name") or ""
        if not name and meta.get("generateName"):
            name = meta["generateName"] + uuid.uuid4().hex[:5]
        if not name:
            raise ApiError(422, "Invalid", "metadata.name: Required value")
        with self.changed:
            if (namespace, name) in self._table(res):
                raise ApiError(409, "AlreadyExists", f'{res.plural} "{name}" already exists')
            meta.update(name=name, uid=str(uuid.uuid4()), generation=1)
            if res.namespaced:
                meta["namespace"] = namespace
            meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            return self._commit(res, "ADDED", self._as_version(res, obj))

    def update(self, res: Resource, namespace: str, obj: Obj, subresource: str = "") -> Obj:
        """PUT semantics: optimistic concurrency on a given resourceVersion."""
        with self.changed:
            current = self._current(res, namespace, obj.get("metadata", {}).get("name", ""))
            wanted_rv = obj.get("metadata", {}).get("resourceVersion")
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {res.plural} "{current["metadata"]["name"]}": '
                    "the object has been modified; please apply your changes to the latest version "
                    "and try again",
                )
            return self._replace(res, current, copy.deepcopy(obj), subresource)

    def patch(
        self, res: Resource, namespace: str, name: str, apply: Callable[[Obj], Obj], subresource: str = ""
    ) -> Obj:
        with self.changed:
            current = self._current(res, namespace, name)
            patched = apply(copy.deepcopy(current))
            wanted_rv = patched.get("metadata", {}).get("resourceVersion")
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'{res.plural} "{name}": the object has been modified')
            return self._replace(res, current, patched, subresource)

    def delete(self, res: Resource, namespace: str, name: str) -> Obj:
        with self.changed:
            current = self._table(res).pop((namespace, name), None)
            if current is None:
                raise ApiError(404, "NotFound", f'{res.plural} "{name}" not found')
            return self._commit(res, "DELETED", copy.deepcopy(current), store=False)

    def set(self, obj: Obj) -> Obj:
        """Create or overwrite an object, status included (what kubelet + etcd would do)."""
        res = self.for_kind(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace", "default")
        with self.changed:
            current = self._table(res).get((namespace, meta["name"]))
            if current is None:
                return self.create(res, namespace, obj)
            return self._replace(res, current, copy.deepcopy(obj), "all")

    def compact(self) -> None:
        """Forget the event history: watches from older versions now get 410 Gone."""
        with self.changed:
            self.history.clear()
            self.compacted_rv = self.rv
            self.changed.notify_all()

    def events_after(self, rv: int) -> Iterator[Event]:
        """Caller holds `changed`. Raises 410 if `rv` is older than the retained history."""
        if rv < self.compacted_rv:
            raise ApiError(410, "Expired", f"too old resource version: {rv} ({self.compacted_rv})")
        for event in self.history:
            if event.rv > rv:
                yield event

    # --- internals (caller holds the lock) ---
    def _current(self, res: Resource, namespace: str, name: str) -> Obj:
        current = self._table(res).get((namespace, name))
        if current is None:
            raise ApiError(404, "NotFound", f'{res.plural} "{name}" not found')
        return current

    def _replace(self, res: Resource, current: Obj, new: Obj, subresource: str) -> Obj:
        if subresource == "status":
            merged = copy.deepcopy(current)
            merged["status"] = new.get("status", {})
        elif subresource == "all" or not res.status_subresource:
            merged = new
        else:
            merged = dict(new)
            merged.pop("status", None)
            if current.get("status") is not None:
                merged["status"] = copy.deepcopy(current["status"])
        keep = {
            k: current["metadata"][k]
            for k in ("uid", "creationTimestamp", "namespace", "name")
            if k in current["metadata"]
        }
        merged.setdefault("metadata", {}).update(keep)
        generation = current["metadata"].get("generation", 1)
        if merged.get("spec") != current.get("spec"):
            generation += 1
        merged["metadata"]["generation"] = generation
        return self._commit(res, "MODIFIED", self._as_version(res, merged), old=current)

    def _commit(self, res: Resource, kind: str, obj: Obj, store: bool = True, old: Obj | None = None) -> Obj:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        meta = obj["metadata"]
        if store:
            self._table(res)[(meta.get("namespace", ""), meta["name"])] = obj
        self.history.append(Event(self.rv, res, kind, copy.deepcopy(obj), old))
        if len(self.history) > self.history_limit:  # like etcd compaction: old watches get 410
            dropped = self.history[: len(self.history) // 2]
            del self.history[: len(dropped)]
            self.compacted_rv = dropped[-1].rv
        self.changed.notify_all()
        return copy.deepcopy(obj)

    @staticmethod
    def _as_version(res: Resource, obj: Obj) -> Obj:
        obj["apiVersion"] = res.api_version
        obj["kind"] = res.kind
        return obj
