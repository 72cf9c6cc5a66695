"""Strict decoding of an EndpointPickerConfig document, as upstream's (Kubernetes' strict serializer).

Unknown fields, duplicate keys and values of the wrong type are errors that name the file, the
line and the field's path (`plugins[2].parameters` ...). Plugin `parameters` are free-form here:
each plugin reads its own (upstream decodes them leniently, per plugin). Besides upstream's fields
the schema holds our documented extensions (flow-control knobs, the pre-v1.2 saturation keys).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"

# A schema is a dict of field -> schema (a struct), a one-element list (a list of that schema),
# a tuple of accepted scalar tags, or ANY.
ANY = "any"
STRING = (STR,)
INTEGER = (INT,)
NUMBER = (INT, FLOAT)
BOOLEAN = (BOOL,)
QUANTITY = (INT, FLOAT, STR)  # Kubernetes resource quantity: 100, "1Gi"
DURATION = (STR, INT, FLOAT)  # "30s"; plain seconds are our extension

REF = {"pluginRef": STRING}
BAND = {
    "priority": INTEGER,
    "maxBytes": QUANTITY,
    "maxRequests": QUANTITY,
    "fairnessPolicyRef": STRING,
    "orderingPolicyRef": STRING,
    "priorityName": STRING,  # ours: the name shown in metrics and logs
}
FLOW_CONTROL = {
    "maxBytes": QUANTITY,
    "maxRequests": QUANTITY,
    "defaultRequestTTL": DURATION,
    "defaultPriorityBand": BAND,
    "priorityBands": [BAND],
    "usageLimitPolicyPluginRef": STRING,
    # ours (docs/flowcontrol.md)
    "enabled": BOOLEAN,
    "rejectSheddable": BOOLEAN,
    "maxConcurrency": QUANTITY,
    "recheckInterval": DURATION,
    "retryAfter": DURATION,
}
SATURATION = {
    "pluginRef": STRING,
    # upstream before v1.2 configured the detector here; still read, with a warning
    "queueDepthThreshold": INTEGER,
    "kvCacheUtilThreshold": NUMBER,
    "metricsStalenessThreshold": DURATION,
}
DOCUMENT: dict[str, Any] = {
    "apiVersion": STRING,
    "kind": STRING,
    "featureGates": [STRING],
    "plugins": [{"name": STRING, "type": STRING, "parameters": ANY}],
    "schedulingProfiles": [{"name": STRING, "plugins": [{"pluginRef": STRING, "weight": NUMBER}]}],
    "saturationDetector": SATURATION,
    "dataLayer": {"sources": [{"pluginRef": STRING, "extractors": [REF]}]},
    "flowControl": FLOW_CONTROL,
    "parser": REF,
}

_KIND = {STR: "a string", INT: "an integer", FLOAT: "a number", BOOL: "true or false"}


class SchemaError(ValueError):
    """`str()` is the full one-line message, `file:line: path: what`."""


@dataclass
class Decoded:
    """The document as plain Python values, and the line of every field path (1-based)."""

    doc: dict[str, Any]
    source: str
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, path: str) -> int | None:
        """The line of `path`, or of the nearest enclosing path that has one."""
        probe = path
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return None

    def where(self, path: str) -> str:
        """`source:line: path`, the prefix of every message about that field."""
        line = self.line_of(path)
        prefix = f"{self.source}:{line}" if line else self.source
        return f"{prefix}: {path}" if path else prefix


def decode(text: str, source: str) -> Decoded:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SchemaError(f"{source}{line}: invalid YAML: {problem}") from None
    if node is None:
        return Decoded({}, source)
    decoded = Decoded({}, source)
    if not isinstance(node, yaml.MappingNode):
        raise SchemaError(f"{source}:{node.start_mark.line + 1}: must be a YAML mapping")
    _check(node, DOCUMENT, "", decoded)
    doc = yaml.safe_load(text)
    decoded.doc = doc if isinstance(doc, dict) else {}
    return decoded


def _check(node: yaml.Node, schema: Any, path: str, out: Decoded) -> None:
    out.lines.setdefault(path, node.start_mark.line + 1)
    if schema == ANY or node.tag == NULL:
        return
    if isinstance(schema, dict):
        _check_struct(node, schema, path, out)
    elif isinstance(schema, list):
        if not isinstance(node, yaml.SequenceNode):
            raise SchemaError(f"{out.where(path)}: must be a list")
        for i, item in enumerate(node.value):
            _check(item, schema[0], f"{path}[{i}]", out)
    elif not isinstance(node, yaml.ScalarNode) or node.tag not in schema:
        expected = " or ".join(dict.fromkeys(_KIND[t] for t in schema))
        got = node.value if isinstance(node, yaml.ScalarNode) else type(node).__name__[:-4].lower()
        raise SchemaError(f"{out.where(path)}: must be {expected}, got {got!r}")


def _check_struct(node: yaml.Node, schema: Mapping[str, Any], path: str, out: Decoded) -> None:
    if not isinstance(node, yaml.MappingNode):
        raise SchemaError(f"{out.where(path)}: must be a mapping")
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = key_node.value
        child = f"{path}.{key}" if path else key
        out.lines[child] = key_node.start_mark.line + 1
        if key in seen:
            raise SchemaError(f"{out.where(child)}: duplicate field")
        seen.add(key)
        if key not in schema:
            raise SchemaError(f"{out.where(child)}: unknown field{_suggest(key, schema)}")
        _check(value_node, schema[key], child, out)


def _suggest(key: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    listed = ", ".join(known)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {listed})"
