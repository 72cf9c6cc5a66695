"""deploy/crds agrees with the Python types: same versions, limits, enums and rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from inference_gateway.api import validation as v
from inference_gateway.api.manifests import SUPPORTED_VERSIONS, parse_objects
from inference_gateway.api.types import AppProtocol, Criticality, FailureMode
from tests.api.cases import CASES, VALID, Case
from tests.api.crd_schema import CEL_RULES, CRD_DIR, ROOT, crd_errors, load_crds, node, schemas, walk

POOL_V1 = ("inference.networking.k8s.io/v1", "InferencePool")
POOL_A2 = ("inference.networking.x-k8s.io/v1alpha2", "InferencePool")
MODEL = ("inference.networking.x-k8s.io/v1alpha2", "InferenceModel")
OBJECTIVE = ("inference.networking.x-k8s.io/v1alpha2", "InferenceObjective")
REWRITE = ("inference.networking.x-k8s.io/v1alpha2", "InferenceModelRewrite")

CRITICALITIES = sorted(c.label for c in Criticality)
LIMITS: list[tuple[tuple[str, str], str, str, Any]] = [
    (POOL_V1, "spec.selector.matchLabels", "minProperties", v.SELECTOR_MIN),
    (POOL_V1, "spec.selector.matchLabels", "maxProperties", v.SELECTOR_MAX),
    (POOL_V1, "spec.selector.matchLabels{}", "maxLength", v.LABEL_VALUE_MAX),
    (POOL_V1, "spec.selector.matchLabels{}", "pattern", v.LABEL_VALUE.pattern),
    (POOL_V1, "spec.targetPorts", "minItems", v.TARGET_PORTS_MIN),
    (POOL_V1, "spec.targetPorts", "maxItems", v.TARGET_PORTS_MAX),
    (POOL_V1, "spec.targetPorts[].number", "minimum", v.PORT_MIN),
    (POOL_V1, "spec.targetPorts[].number", "maximum", v.PORT_MAX),
    (POOL_V1, "spec.appProtocol", "enum", [p.value for p in AppProtocol]),
    (POOL_V1, "spec.endpointPickerRef.failureMode", "enum", [m.value for m in FailureMode]),
    (POOL_V1, "spec.endpointPickerRef.failureMode", "default", FailureMode.FAIL_CLOSE.value),
    (POOL_V1, "spec.endpointPickerRef.group", "pattern", v.GROUP.pattern),
    (POOL_V1, "spec.endpointPickerRef.kind", "pattern", v.KIND.pattern),
    (POOL_V1, "spec.endpointPickerRef.kind", "maxLength", v.KIND_MAX),
    (POOL_V1, "spec.endpointPickerRef.name", "maxLength", v.NAME_MAX),
    (POOL_V1, "spec.endpointPickerRef.port.number", "maximum", v.PORT_MAX),
    (POOL_A2, "spec.selector", "maxProperties", v.SELECTOR_MAX),
    (POOL_A2, "spec.targetPortNumber", "minimum", v.PORT_MIN),
    (POOL_A2, "spec.extensionRef.portNumber", "maximum", v.PORT_MAX),
    (POOL_A2, "spec.extensionRef.failureMode", "enum", [m.value for m in FailureMode]),
    (MODEL, "spec.modelName", "maxLength", v.MODEL_NAME_MAX),
    (MODEL, "spec.criticality", "enum", CRITICALITIES),
    (MODEL, "spec.targetModels", "maxItems", v.TARGET_MODELS_MAX),
    (MODEL, "spec.targetModels[].name", "maxLength", v.TARGET_MODEL_NAME_MAX),
    (MODEL, "spec.targetModels[].weight", "minimum", v.WEIGHT_MIN),
    (MODEL, "spec.targetModels[].weight", "maximum", v.WEIGHT_MAX),
    (MODEL, "spec.poolRef.name", "maxLength", v.NAME_MAX),
    (OBJECTIVE, "spec.priority", "type", "integer"),
    (OBJECTIVE, "spec.criticality", "enum", CRITICALITIES),
    (REWRITE, "spec.rules[].matches[].model.type", "enum", ["Exact"]),
    (REWRITE, "spec.rules[].matches[].model.value", "maxLength", v.MODEL_NAME_MAX),
    (REWRITE, "spec.rules[].targets[].weight", "minimum", v.WEIGHT_MIN),
    (REWRITE, "spec.rules[].targets[].weight", "maximum", v.WEIGHT_MAX),
    (REWRITE, "spec.rules[].targets[].modelRewrite", "maxLength", v.TARGET_MODEL_NAME_MAX),
]


@pytest.mark.parametrize("path", sorted(CRD_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_crd_is_a_valid_kubernetes_object(path: Path) -> None:
    kubernetes_validate.validate(yaml.safe_load(path.read_text()), kubernetes_validate.latest_version(), True)


def test_crds_cover_exactly_the_versions_the_parser_reads() -> None:
    parsed = {(version, kind) for kind, versions in SUPPORTED_VERSIONS.items() for version in versions}
    assert set(schemas()) == parsed - {("v1", "Pod")}


@pytest.mark.parametrize("crd_key, path, key, expected", LIMITS, ids=lambda x: str(x))
def test_limit_agrees_with_python(crd_key: tuple[str, str], path: str, key: str, expected: Any) -> None:
    actual = node(schemas()[crd_key], path)[key]
    assert (sorted(actual) if key == "enum" else actual) == (sorted(expected) if key == "enum" else expected)


def test_every_cel_rule_is_enforced_by_the_parser_tests() -> None:
    nodes = [n for s in schemas().values() for _, n in walk(s)]
    rules = {r["rule"] for n in nodes for r in n.get("x-kubernetes-validations", [])}
    assert rules == set(CEL_RULES)


def test_printer_columns_point_at_schema_fields() -> None:
    for crd in load_crds():
        for version in crd["spec"]["versions"]:
            fields = {p for p, _ in walk(version["schema"]["openAPIV3Schema"])}
            for column in version["additionalPrinterColumns"]:
                path = column["jsonPath"].lstrip(".").replace("[*]", "[]").split("[?")[0]
                if path.startswith("metadata."):
                    continue
                assert path in fields, f"{crd['metadata']['name']}: column {column['name']} -> {path}"


def _crd_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every object with a CRD in the repository's example and deploy manifests."""
    known = set(schemas())
    docs = []
    for folder in (ROOT / "examples", ROOT / "deploy"):
        for path in sorted(folder.rglob("*.y*ml")):
            if path.parent == CRD_DIR or "templates" in path.parts:
                continue  # CRDs themselves, and Helm templates (Go templates, not YAML)
            for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
                if isinstance(doc, dict) and (doc.get("apiVersion"), doc.get("kind")) in known:
                    docs.append((f"{path.relative_to(ROOT)}#{i}", doc))
    return docs


@pytest.mark.parametrize("source, doc", _crd_documents(), ids=lambda x: x if isinstance(x, str) else "")
def test_example_manifest_passes_crd_and_parser(source: str, doc: dict[str, Any]) -> None:
    assert crd_errors(doc) == []
    parse_objects([doc], source)


def test_there_are_example_manifests_for_every_crd() -> None:
    assert {(d["apiVersion"], d["kind"]) for _, d in _crd_documents()} == set(schemas())


@pytest.mark.parametrize("obj", [o for o in VALID if o["kind"] != "Pod"], ids=lambda o: str(o["kind"]))
def test_valid_objects_pass_the_crd(obj: dict[str, Any]) -> None:
    assert crd_errors(obj) == []


@pytest.mark.parametrize("case", [c for c in CASES if c.crd_rejects], ids=lambda c: c.id)
def test_crd_rejects_what_the_parser_rejects(case: Case) -> None:
    assert crd_errors(case.object()), f"the CRD accepts what the parser rejects: {case.message}"
