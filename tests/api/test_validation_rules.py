"""Each validation rule has a failing example, and the error names the object, field and reason."""

from __future__ import annotations

import copy

import pytest
import yaml

from inference_gateway.api.errors import ManifestError
from inference_gateway.api.manifests import parse_objects, parse_yaml
from tests.api.cases import CASES, VALID, Case


@pytest.mark.parametrize("obj", VALID, ids=lambda o: str(o["kind"]))
def test_valid_objects_parse(obj: dict) -> None:
    resources = parse_objects([copy.deepcopy(obj)], "valid.yaml")
    assert len(resources.other) == 0
    assert (
        sum(
            map(
                len,
                (resources.pools, resources.models, resources.objectives, resources.rewrites, resources.pods),
            )
        )
        == 1
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rule_rejects_with_precise_message(case: Case) -> None:
    with pytest.raises(ManifestError) as info:
        parse_objects([case.object()], "fleet.yaml")
    text = str(info.value)
    assert text.startswith("fleet.yaml: "), text
    assert case.message in text, f"expected {case.message!r} in:\n{text}"


def test_every_problem_in_every_object_is_reported_with_its_line() -> None:
    text = """\
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: a}
spec:
  modelName: ""
  criticality: High
  poolRef: {name: pool}
---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: pool}
spec:
  selector: {matchLabels: {app: x}}
  targetPorts: [{number: 99999}]
"""
    with pytest.raises(ManifestError) as info:
        parse_yaml(text, "models.yaml")
    lines = str(info.value).splitlines()
    assert lines == [
        "models.yaml: line 1: InferenceModel default/a: spec.modelName: must not be empty",
        "models.yaml: line 1: InferenceModel default/a: spec.criticality: 'High' must be one of Critical, "
        "Standard, Sheddable",
        "models.yaml: line 9: InferencePool default/pool: spec.targetPorts[0].number: 99999 must be an "
        "integer from 1 to 65535",
    ]
    assert [p.obj for p in info.value.problems] == ["InferenceModel default/a", "InferencePool default/pool"]


def test_yaml_syntax_error_names_file_and_position() -> None:
    with pytest.raises(ManifestError) as info:
        parse_yaml("kind: InferencePool\nspec:\n  targetPorts: [8000\n", "broken.yaml")
    assert str(info.value).startswith("broken.yaml: YAML: invalid YAML at line 4, column 1")


def test_document_that_is_not_a_mapping() -> None:
    with pytest.raises(ManifestError, match=r"list.yaml: line 1: document: is not a YAML mapping"):
        parse_yaml("- a\n- b\n", "list.yaml")


def test_object_without_kind() -> None:
    with pytest.raises(ManifestError, match=r"x.yaml: line 1: <no kind> default/p: kind: is required"):
        parse_yaml("apiVersion: v1\nmetadata: {name: p}\n", "x.yaml")


def test_same_object_twice_names_both_places() -> None:
    doc = yaml.safe_dump(VALID[2])
    with pytest.raises(ManifestError) as info:
        parse_yaml(doc + "---\n" + doc, "models.yaml")
    assert (
        "InferenceModel default/food-review: metadata.name: is defined twice; first definition at "
        "models.yaml: line 1" in str(info.value)
    )


def test_api_objects_get_the_same_messages_as_files() -> None:
    """Objects from the Kubernetes API (already decoded) are validated identically."""
    case = next(c for c in CASES if c.id == "model-weight-zero")
    with pytest.raises(ManifestError) as info:
        parse_objects([case.object()], "kubernetes")
    assert str(info.value) == f"kubernetes: {case.message}"


def test_unprintable_characters_are_a_manifest_error() -> None:
    with pytest.raises(
        ManifestError, match=r"^ctl.yaml: YAML: invalid YAML at character 0: special characters"
    ):
        parse_yaml("\x1f", "ctl.yaml")
