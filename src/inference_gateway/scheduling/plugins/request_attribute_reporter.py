"""request-attribute-reporter (GIE v1.5): report a number computed from the response's token
usage to the proxy, as ext_proc dynamic metadata (e.g. a request's cost for Envoy's rate
limiting or billing).

Parameters (upstream's): `attributes`, exactly one entry, with `key.namespace` (default
`envoy.lb`), `key.name` (required), `expression` (required; CEL over `usage`, must give a
number) and `condition` (optional CEL, must give true for the value to be reported). `usage`
is upstream's Usage struct as a google.protobuf.Struct: `prompt_tokens`, `completion_tokens`,
`total_tokens` (numbers, 0 when the response reported none) and
`prompt_token_details.cached_tokens` when the server reported cached tokens. The value is
truncated to an integer and sent as a number once the response ends; 0, a false condition or
an evaluation error sends nothing (errors are logged), as upstream. Expressions are compiled
at load, so a syntax error is a config error. CEL is evaluated by cel-python (upstream:
cel-go), which is laxer on mixed int/double arithmetic.

The EPP asks Envoy for the response phase for every request while this plugin is configured
(our envoy-config accepts `envoy.lb` metadata from it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import celpy

from inference_gateway.scheduling.params import get_str, reject_unknown

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "envoy.lb"


def _compile(env: celpy.Environment, text: str, what: str) -> Any:
    try:
        return env.program(env.compile(text))
    except celpy.CELParseError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise ValueError(f"failed to compile {what}: {first}") from None


class RequestAttributeReporter:
    type_name = "request-attribute-reporter"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        reject_unknown(params, frozenset({"attributes"}))
        self.name = name
        attributes = params.get("attributes")
        if not isinstance(attributes, list) or len(attributes) != 1 or not isinstance(attributes[0], dict):
            raise ValueError("attributes must contain exactly one entry")
        attribute = attributes[0]
        reject_unknown(attribute, frozenset({"key", "expression", "condition"}))
        key = attribute.get("key") or {}
        if not isinstance(key, dict):
            raise ValueError("attributes[0].key must be a mapping")
        reject_unknown(key, frozenset({"namespace", "name"}))
        self.key_name = get_str(key, "name", "")
        if not self.key_name:
            raise ValueError("attributeKey.name cannot be empty")
        self.namespace = get_str(key, "namespace", "") or DEFAULT_NAMESPACE
        self.expression = get_str(attribute, "expression", "")
        if not self.expression:
            raise ValueError("attributes[0].expression cannot be empty")
        self.condition = get_str(attribute, "condition", "")
        env = celpy.Environment()
        self._expression = _compile(env, self.expression, "expression")
        self._condition = _compile(env, self.condition, "condition") if self.condition else None

    def response_metadata(self, usage: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """{namespace: {name: value}} for the response's usage, or {} when nothing is reported."""
        data = {"usage": celpy.json_to_cel(dict(usage))}
        if self._condition is not None and self._evaluate(self._condition, data, "condition") is not True:
            return {}
        value = self._evaluate(self._expression, data, "expression")
        if isinstance(value, bool) or not isinstance(value, int | float):
            if value is not None:
                log.error("%s: expression %r gave %r, not a number", self.name, self.expression, value)
            return {}
        number = int(value)
        return {self.namespace: {self.key_name: float(number)}} if number else {}

    def _evaluate(self, program: Any, data: dict[str, Any], what: str) -> Any:
        try:
            result = program.evaluate(data)
        except (celpy.CELEvalError, TypeError, ValueError, KeyError) as exc:
            log.error("%s: failed to evaluate %s: %s", self.name, what, exc)
            return None
        if isinstance(result, celpy.CELEvalError):
            log.error("%s: failed to evaluate %s: %s", self.name, what, result)
            return None
        return bool(result) if isinstance(result, celpy.celtypes.BoolType) else result
