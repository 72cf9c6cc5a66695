"""Validate objects against the CRDs in deploy/crds: the openAPIV3Schema (with jsonschema, strict
about unknown fields as `kubectl apply` is) plus the CRDs' CEL rules, emulated one by one."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "deploy" / "crds"


@functools.cache
def load_crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted(CRD_DIR.glob("*.yaml"))]


@functools.cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema."""
    out = {}
    for crd in load_crds():
        spec = crd["spec"]
        for version in spec["versions"]:
            out[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = version["schema"][
                "openAPIV3Schema"
            ]
    return out


def _all_or_none(items: list[dict[str, Any]]) -> bool:
    flags = [isinstance(i, dict) and "weight" in i for i in items]
    return all(flags) or not any(flags)


def _unique_numbers(ports: list[dict[str, Any]]) -> bool:
    numbers = [p.get("number") for p in ports]
    return all(numbers.count(n) == 1 for n in numbers)


CEL_RULES: dict[str, Callable[[Any], bool]] = {
    "self.all(p1, self.exists_one(p2, p1.number==p2.number))": _unique_numbers,
    # `kind` defaults to Service before CEL runs.
    "self.kind != 'Service' || has(self.port)": lambda v: (
        v.get("kind", "Service") != "Service" or "port" in v
    ),
    "self.all(model, has(model.weight)) || self.all(model, !has(model.weight))": _all_or_none,
    "self.all(t, has(t.weight)) || self.all(t, !has(t.weight))": _all_or_none,
}


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def node(schema: dict[str, Any], path: str) -> dict[str, Any]:
    return dict(walk(schema))[path]


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    for _, sub in walk(schema):
        if "properties" in sub and "additionalProperties" not in sub:
            sub["additionalProperties"] = False
    return schema


def _cel_errors(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    errors = []
    for rule in schema.get("x-kubernetes-validations") or []:
        if not CEL_RULES[rule["rule"]](value):
            errors.append(f"{path}: {rule['message']}")
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                errors += _cel_errors(sub, value[name], f"{path}.{name}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors += _cel_errors(schema["items"], item, f"{path}[{i}]")
    return errors


@functools.cache
def _validator(key: tuple[str, str]) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(_strict(schemas()[key]))


def crd_errors(obj: dict[str, Any]) -> list[str]:
    """Why the API server would reject `obj` (empty when it would accept it)."""
    schema = schemas()[(obj["apiVersion"], obj["kind"])]
    validator = _validator((obj["apiVersion"], obj["kind"]))
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    return errors or _cel_errors(schema, obj, "")
