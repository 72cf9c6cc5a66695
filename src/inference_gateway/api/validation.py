"""Field-level validation shared by the manifest parsers.

The limits and patterns here are the ones the CRDs in deploy/crds/ declare; a test checks the two
agree. `ObjectReader` walks one object and collects every problem instead of stopping at the first.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from inference_gateway.api.errors import FieldError

# --- limits (mirrored in deploy/crds/*.yaml) -------------------------------------------------
NAME_MAX = 253
NAMESPACE_MAX = 63
KIND_MAX = 63
LABEL_VALUE_MAX = 63
SELECTOR_MIN, SELECTOR_MAX = 1, 64
TARGET_PORTS_MIN, TARGET_PORTS_MAX = 1, 8
PORT_MIN, PORT_MAX = 1, 65535
MODEL_NAME_MAX = 256
TARGET_MODELS_MAX = 10
TARGET_MODEL_NAME_MAX = 253
WEIGHT_MIN, WEIGHT_MAX = 1, 1_000_000
LEGACY_EPP_PORT = 9002

# --- patterns (Kubernetes name / label rules, as the upstream API types declare them) ----------
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
GROUP = re.compile(r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
KIND = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$"
)
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

_TYPE_NAMES = {str: "a string", int: "an integer", dict: "an object", list: "a list", bool: "a boolean"}
_MISSING = object()


def type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_kind(value: Any, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        return bool in kinds
    return isinstance(value, kind)


class ObjectReader:
    """Reads fields of one object by dotted path, recording a FieldError for each problem."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.errors: list[FieldError] = []

    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self.obj
        walked: list[str] = []
        for part in path.split("."):
            if node is None:
                return default
            if not isinstance(node, dict):
                self.fail(".".join(walked), f"must be an object, got {type(node).__name__}")
                return default
            if part not in node:
                return default
            node = node[part]
            walked.append(part)
        return node

    def require(self, path: str, kind: type | tuple[type, ...]) -> Any:
        value = self.get(path, _MISSING)
        if value is _MISSING or value is None:
            self.fail(path, "is required")
            return None
        if not _is_kind(value, kind):
            self.fail(path, f"must be {type_name(kind)}, got {type(value).__name__}")
            return None
        return value

    def optional(self, path: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = self.get(path)
        if value is None:
            return default
        if not _is_kind(value, kind):
            self.fail(path, f"must be {type_name(kind)}, got {type(value).__name__}")
            return default
        return value

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    # --- reusable checks --------------------------------------------------------------------
    def known_fields(self, path: str, node: Any, allowed: Iterable[str]) -> None:
        """Reject unknown fields (typos) the way `kubectl apply` strict validation does."""
        if not isinstance(node, dict):
            return
        allowed = list(allowed)
        for key in node:
            if key in allowed:
                continue
            where = f"{path}.{key}" if path else str(key)
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else f" (known fields: {', '.join(allowed)})"
            self.fail(where, f"unknown field{suggestion}")

    def string(self, path: str, value: Any, max_len: int, min_len: int = 1) -> str:
        if not isinstance(value, str):
            self.fail(path, f"must be a string, got {type(value).__name__}")
            return ""
        if len(value) < min_len:
            self.fail(path, "must not be empty")
        elif len(value) > max_len:
            self.fail(path, f"must be at most {max_len} characters, is {len(value)}")
        return value

    def pattern(self, path: str, value: str, regex: re.Pattern[str], what: str) -> None:
        if value and not regex.match(value):
            self.fail(path, f"{value!r} is not {what}")

    def int_range(self, path: str, value: Any, low: int, high: int) -> int | None:
        if not is_int(value) or not low <= value <= high:
            self.fail(path, f"{value!r} must be an integer from {low} to {high}")
            return None
        return int(value)

    def enum(self, path: str, value: Any, allowed: Iterable[str]) -> bool:
        allowed = list(allowed)
        if value not in allowed:
            self.fail(path, f"{value!r} must be one of {', '.join(allowed)}")
            return False
        return True

    def object_name(self, path: str, value: Any) -> str:
        return self.string(path, value, NAME_MAX)

    def group(self, path: str, value: Any) -> str:
        text = self.string(path, value, NAME_MAX, min_len=0)
        self.pattern(path, text, GROUP, 'a valid API group (a DNS subdomain, or "" for core)')
        return text

    def kind(self, path: str, value: Any) -> str:
        text = self.string(path, value, KIND_MAX)
        self.pattern(path, text, KIND, "a valid kind (letters, digits and '-', starting with a letter)")
        return text

    def label_selector(self, path: str, labels: Any) -> dict[str, str]:
        if not isinstance(labels, dict):
            return {}
        if not SELECTOR_MIN <= len(labels) <= SELECTOR_MAX:
            self.fail(path, f"must have {SELECTOR_MIN}-{SELECTOR_MAX} labels, has {len(labels)}")
        out: dict[str, str] = {}
        for key, value in labels.items():
            where = f"{path}[{key}]"
            if not isinstance(key, str) or len(key) > NAME_MAX or not LABEL_KEY.match(key):
                self.fail(where, f"{key!r} is not a valid label key")
            if not isinstance(value, str):
                self.fail(where, f"label values must be strings, got {type(value).__name__} (quote it)")
                continue
            if len(value) > LABEL_VALUE_MAX or not LABEL_VALUE.match(value):
                self.fail(where, f"{value!r} is not a valid label value (<= 63 of [A-Za-z0-9-_.])")
            out[str(key)] = value
        return out
