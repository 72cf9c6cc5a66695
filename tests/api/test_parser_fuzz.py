"""Any value in any field of a valid object either parses or gives a ManifestError, never a crash."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from inference_gateway.api.errors import ManifestError
from inference_gateway.api.manifests import parse_objects
from tests.api.cases import VALID

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    obj = copy.deepcopy(draw(st.sampled_from(VALID)))
    *parents, last = draw(st.sampled_from(_paths(obj)))
    node = obj
    for part in parents:
        node = node[part]
    node[last] = draw(values)
    return obj


@settings(max_examples=200, deadline=None)
@given(mutated())
def test_mutated_objects_parse_or_fail_cleanly(obj: dict[str, Any]) -> None:
    try:
        parse_objects([obj], "fuzz")
    except ManifestError as err:
        assert str(err).startswith("fuzz: ")
        assert all(p.errors or p.obj for p in err.problems)
