"""HTTPRoutes (gateway.networking.k8s.io/v1) whose backends are InferencePools, for the local gateway.

The subset a local Envoy needs: hostnames; path (Exact, PathPrefix, RegularExpression), header
(Exact, RegularExpression) and method matches; InferencePool backendRefs with weights. Other
backend kinds and rule filters are refused with an error naming the field, not ignored.

`parse_httproutes` returns one `RouteRule` per (rule, match) pair, in Gateway API precedence
order, which is the order Envoy must try them in: exact path, then the longest prefix, then a
method match, then the most header matches; ties go to the older route, then to namespace/name,
then to rule order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from inference_gateway.api.errors import FieldError, ManifestError
from inference_gateway.api.types import LEGACY_GROUP, POOL_GROUP, ObjectRef

HTTPROUTE_KIND = "HTTPRoute"
HTTPROUTE_VERSIONS = ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1")
PATH_TYPES = ("Exact", "PathPrefix", "RegularExpression")
HEADER_TYPES = ("Exact", "RegularExpression")


@dataclass(frozen=True, slots=True)
class PathMatch:
    kind: str = "PathPrefix"
    value: str = "/"


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    name: str
    value: str
    regex: bool = False


@dataclass(frozen=True, slots=True)
class RouteMatch:
    path: PathMatch = PathMatch()
    headers: tuple[HeaderMatch, ...] = ()
    method: str | None = None


@dataclass(frozen=True, slots=True)
class PoolBackend:
    pool: ObjectRef
    weight: int = 1


@dataclass(frozen=True, slots=True)
class RouteRule:
    """One match of one HTTPRoute rule, and the pools it sends traffic to."""

    route: ObjectRef
    index: int
    match: RouteMatch
    backends: tuple[PoolBackend, ...]
    hostnames: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.route}/rule-{self.index}"

    @property
    def live_backends(self) -> tuple[PoolBackend, ...]:
        """Backends that get traffic (weight 0 turns a backend off)."""
        return tuple(b for b in self.backends if b.weight > 0)


def parse_httproutes(objects: Iterable[Any], source: str = "config") -> list[RouteRule]:
    """Every HTTPRoute among `objects` (other kinds are skipped), as rules in precedence order."""
    keyed: list[tuple[tuple[Any, ...], RouteRule]] = []
    problems: list[ManifestError] = []
    for obj in objects:
        if not isinstance(obj, dict) or obj.get("kind") != HTTPROUTE_KIND:
            continue
        errors: list[FieldError] = []
        rules = _parse_route(obj, errors)
        if errors:
            problems.append(ManifestError(source, _label(obj), errors))
            continue
        created = str((obj.get("metadata") or {}).get("creationTimestamp") or "")
        for rule in rules:
            keyed.append((_precedence(rule, created), rule))
    if problems:
        raise ManifestError.combine(problems)
    return [rule for _, rule in sorted(keyed, key=lambda kr: kr[0])]


def referenced_pools(rules: Iterable[RouteRule]) -> list[ObjectRef]:
    """Pools the rules send traffic to, in first-seen order."""
    seen: dict[ObjectRef, None] = {}
    for rule in rules:
        for backend in rule.backends:
            seen.setdefault(backend.pool, None)
    return list(seen)


def _label(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"HTTPRoute {meta.get('namespace', 'default')}/{meta.get('name', '<unnamed>')}"


def _precedence(rule: RouteRule, created: str) -> tuple[Any, ...]:
    path = rule.match.path
    path_rank = PATH_TYPES.index(path.kind)
    prefix_len = -len(path.value) if path.kind == "PathPrefix" else 0
    return (
        path_rank,
        prefix_len,
        rule.match.method is None,
        -len(rule.match.headers),
        created,
        rule.route.namespace,
        rule.route.name,
        rule.index,
    )


def _parse_route(obj: dict[str, Any], errors: list[FieldError]) -> list[RouteRule]:
    if obj.get("apiVersion") not in HTTPROUTE_VERSIONS:
        errors.append(FieldError("apiVersion", f"must be one of {', '.join(HTTPROUTE_VERSIONS)}"))
        return []
    meta = obj.get("metadata") or {}
    if not meta.get("name"):
        errors.append(FieldError("metadata.name", "is required"))
        return []
    ref = ObjectRef(str(meta.get("namespace") or "default"), str(meta["name"]))
    spec = obj.get("spec") or {}
    hostnames = tuple(str(h) for h in spec.get("hostnames") or ())
    raw_rules = spec.get("rules") or [{}]
    if not isinstance(raw_rules, list):
        errors.append(FieldError("spec.rules", "must be a list"))
        return []
    rules: list[RouteRule] = []
    for i, raw in enumerate(raw_rules):
        where = f"spec.rules[{i}]"
        if not isinstance(raw, dict):
            errors.append(FieldError(where, "must be a mapping"))
            continue
        if raw.get("filters"):
            errors.append(FieldError(f"{where}.filters", "filters are not supported by the local gateway"))
        backends = _backends(raw.get("backendRefs"), ref.namespace, where, errors)
        for match in _matches(raw.get("matches"), where, errors):
            rules.append(RouteRule(ref, i, match, backends, hostnames))
    return rules


def _backends(raw: Any, namespace: str, where: str, errors: list[FieldError]) -> tuple[PoolBackend, ...]:
    if not isinstance(raw, list) or not raw:
        errors.append(FieldError(f"{where}.backendRefs", "at least one InferencePool backendRef is required"))
        return ()
    out: list[PoolBackend] = []
    for j, ref in enumerate(raw):
        at = f"{where}.backendRefs[{j}]"
        if not isinstance(ref, dict) or not ref.get("name"):
            errors.append(FieldError(f"{at}.name", "is required"))
            continue
        if ref.get("kind") != "InferencePool" or ref.get("group") not in (POOL_GROUP, LEGACY_GROUP):
            errors.append(
                FieldError(at, f"only InferencePool backends (group {POOL_GROUP}) are supported locally")
            )
            continue
        weight = ref.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 1_000_000:
            errors.append(FieldError(f"{at}.weight", f"must be an integer in 0..1000000, got {weight!r}"))
            continue
        out.append(PoolBackend(ObjectRef(str(ref.get("namespace") or namespace), str(ref["name"])), weight))
    return tuple(out)


def _matches(raw: Any, where: str, errors: list[FieldError]) -> list[RouteMatch]:
    if raw is None or raw == []:
        return [RouteMatch()]
    if not isinstance(raw, list):
        errors.append(FieldError(f"{where}.matches", "must be a list"))
        return []
    out: list[RouteMatch] = []
    for k, m in enumerate(raw):
        at = f"{where}.matches[{k}]"
        if not isinstance(m, dict):
            errors.append(FieldError(at, "must be a mapping"))
            continue
        if m.get("queryParams"):
            errors.append(
                FieldError(f"{at}.queryParams", "query parameter matches are not supported locally")
            )
        path = _path(m.get("path"), at, errors)
        headers = _headers(m.get("headers"), at, errors)
        method = m.get("method")
        out.append(RouteMatch(path, headers, str(method) if method else None))
    return out


def _path(raw: Any, at: str, errors: list[FieldError]) -> PathMatch:
    if raw is None:
        return PathMatch()
    kind = raw.get("type", "PathPrefix") if isinstance(raw, dict) else None
    value = raw.get("value", "/") if isinstance(raw, dict) else None
    if kind not in PATH_TYPES or not isinstance(value, str) or not value:
        errors.append(FieldError(f"{at}.path", f"type must be one of {', '.join(PATH_TYPES)}, with a value"))
        return PathMatch()
    if kind != "RegularExpression" and not value.startswith("/"):
        errors.append(FieldError(f"{at}.path.value", "must start with '/'"))
    return PathMatch(kind, value)


def _headers(raw: Any, at: str, errors: list[FieldError]) -> tuple[HeaderMatch, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.append(FieldError(f"{at}.headers", "must be a list"))
        return ()
    out: list[HeaderMatch] = []
    for n, h in enumerate(raw):
        kind = h.get("type", "Exact") if isinstance(h, dict) else None
        if kind not in HEADER_TYPES or not h.get("name") or not isinstance(h.get("value"), str):
            errors.append(
                FieldError(f"{at}.headers[{n}]", "needs a name, a value and type Exact or RegularExpression")
            )
            continue
        out.append(HeaderMatch(str(h["name"]).lower(), h["value"], kind == "RegularExpression"))
    return tuple(out)
