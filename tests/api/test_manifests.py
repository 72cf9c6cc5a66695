"""Loading manifests: upstream-style examples, both InferencePool shapes, directories, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_gateway.api.errors import ManifestError
from inference_gateway.api.manifests import ResourceSet, load_path, parse_objects, parse_yaml
from inference_gateway.api.render import render
from inference_gateway.api.types import AppProtocol, Criticality, FailureMode, ObjectRef, TargetModel

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "resources"

# The shapes the upstream project's own quickstart manifests use (written for this test).
UPSTREAM_STYLE = """\
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata:
  labels:
  name: vllm-llama3-8b-instruct
spec:
  targetPortNumber: 8000
  selector:
    app: vllm-llama3-8b-instruct
  extensionRef:
    name: vllm-llama3-8b-instruct-epp
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata:
  name: food-review
spec:
  modelName: food-review
  criticality: Standard
  poolRef:
    name: vllm-llama3-8b-instruct
  targetModels:
  - name: food-review-1
    weight: 100
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata:
  name: base-model
spec:
  modelName: meta-llama/Llama-3.1-8B-Instruct
  criticality: Critical
  poolRef:
    name: vllm-llama3-8b-instruct
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata:
  name: base-model-cpu
spec:
  criticality: Critical
  poolRef:
    group: inference.networking.k8s.io
    name: vllm-llama3-8b-instruct
---
apiVersion: v1
kind: Service
metadata:
  name: vllm-llama3-8b-instruct-epp
spec:
  ports: [{port: 9002, targetPort: 9002}]
"""


def _all_objects(rs: ResourceSet) -> list[object]:
    return [*rs.pools, *rs.models, *rs.objectives, *rs.rewrites, *rs.pods]


def test_upstream_style_manifests_load_unchanged() -> None:
    rs = parse_yaml(UPSTREAM_STYLE, "upstream.yaml")
    (pool,) = rs.pools
    assert pool.selector == {"app": "vllm-llama3-8b-instruct"}
    assert pool.target_ports == (8000,)
    assert pool.endpoint_picker.port == 9002  # v1alpha2 default
    assert pool.endpoint_picker.failure_mode is FailureMode.FAIL_CLOSE
    food, base = rs.models
    assert food.target_models == (TargetModel("food-review-1", 100),)
    assert (food.criticality, base.criticality) == (Criticality.STANDARD, Criticality.CRITICAL)
    assert base.pool == ObjectRef("default", "vllm-llama3-8b-instruct")
    (objective,) = rs.objectives
    assert objective.priority == 1  # the early v1alpha2 objective's criticality, read as a priority
    assert [o["kind"] for o in rs.other] == ["Service"]


def test_example_directory_loads_and_round_trips() -> None:
    rs = load_path(EXAMPLES)
    assert rs.summary() == "2 pools, 3 models, 2 objectives, 1 rewrites, 2 pods"
    v1 = next(p for p in rs.pools if p.ref.name == "vllm-llama3-8b")
    assert v1.target_ports == (8000, 8001)
    assert v1.app_protocol is AppProtocol.HTTP
    legacy = next(p for p in rs.pools if p.ref.name == "vllm-qwen-legacy")
    assert (legacy.endpoint_picker.port, legacy.endpoint_picker.failure_mode) == (9002, FailureMode.FAIL_OPEN)
    unweighted = next(m for m in rs.models if m.ref.name == "batch-summaries")
    assert [t.weight for t in unweighted.target_models] == [None, None]
    again = parse_objects([render(o) for o in _all_objects(rs)], "rendered")
    assert _all_objects(again) == _all_objects(rs)


def test_defaults_of_the_v1_pool() -> None:
    rs = parse_yaml(
        """\
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: p, namespace: team-a}
spec:
  selector: {matchLabels: {app: x}}
  targetPorts: [{number: 8000}]
  appProtocol: kubernetes.io/h2c
""",
        "p.yaml",
    )
    (pool,) = rs.pools
    assert pool.ref == ObjectRef("team-a", "p")
    assert pool.app_protocol is AppProtocol.H2C
    assert not pool.endpoint_picker.is_set  # optional since v1.5
    assert render(pool)["spec"].get("endpointPickerRef") is None


def test_creation_timestamps_order_models() -> None:
    rs = parse_yaml(
        """\
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: a, creationTimestamp: "2025-03-01T10:00:00Z"}
spec: {modelName: m, poolRef: {name: p}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: b, creationTimestamp: 2025-03-01T09:59:59Z}
spec: {modelName: m, poolRef: {name: p}}
""",
        "m.yaml",
    )
    a, b = rs.models
    assert a.created_at - b.created_at == 1.0


def test_directory_is_read_recursively_and_skips_hidden_entries(tmp_path: Path) -> None:
    (tmp_path / "pools").mkdir()
    (tmp_path / "pools" / "pool.yml").write_text((EXAMPLES / "pool.yaml").read_text())
    (tmp_path / "models.yaml").write_text((EXAMPLES / "models.yaml").read_text())
    (tmp_path / "notes.txt").write_text("not yaml: [")
    # What a mounted ConfigMap looks like: the real files live in a hidden ..data directory.
    (tmp_path / "..data").mkdir()
    (tmp_path / "..data" / "models.yaml").write_text((EXAMPLES / "models.yaml").read_text())
    rs = load_path(tmp_path)
    assert (len(rs.pools), len(rs.models)) == (1, 3)


def test_problems_in_several_files_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "kind: InferencePool\napiVersion: inference.networking.k8s.io/v1\nmetadata: {name: p}\nspec: {}\n"
    )
    (tmp_path / "b.yaml").write_text("key: [unclosed\n")
    with pytest.raises(ManifestError) as info:
        load_path(tmp_path)
    files = {p.source.split(":")[0] for p in info.value.problems}
    assert files == {str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")}
    assert (
        f"{tmp_path / 'a.yaml'}: line 1: InferencePool default/p: spec.selector.matchLabels: is required"
        in str(info.value)
    )


def test_missing_path() -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        load_path("/nonexistent/manifests")
