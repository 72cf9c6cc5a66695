"""`inference-gateway validate`: recursive, every kind the gateway reads, file:line:column per
error, non-zero exit on any error, Helm values skipped with a note."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from inference_gateway.cli import app

POOL = """\
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: pool}
spec:
  selector: {matchLabels: {app: vllm}}
  targetPorts: [{number: 8000}]
  endpointPickerRef: {name: epp, port: {number: 9002}}
"""
BAD_MODEL = """\
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: chat}
spec:
  modelName: chat
  poolRef: {name: pool}
  criticality: High
"""
BAD_PICKER = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: no-such-scorer
"""
BAD_FLEET = """\
apiVersion: inference-gateway.dev/v1alpha1
kind: LocalFleet
spec:
  pods:
  - pool: pool
    labels: {app: vllm}
"""


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", *args])
    return result.exit_code, result.output


def test_valid_tree_is_ok_and_counts_every_kind(tmp_path: Path) -> None:
    (tmp_path / "a" / "deeper").mkdir(parents=True)
    (tmp_path / "a" / "pool.yaml").write_text(POOL)
    (tmp_path / "a" / "deeper" / "pool.yaml").write_text(POOL)  # its own config dir: no duplicate
    (tmp_path / "a" / "epp.yaml").write_text(
        BAD_PICKER.replace("no-such-scorer", "kv-cache-utilization-scorer")
    )
    code, out = run(str(tmp_path))
    assert code == 0, out
    assert "2 pools" in out and "1 EndpointPickerConfigs" in out


def test_every_error_has_file_line_column_and_exit_is_nonzero(tmp_path: Path) -> None:
    sub = tmp_path / "config" / "sub"
    sub.mkdir(parents=True)
    (sub / "pool.yaml").write_text(POOL)
    (sub / "models.yaml").write_text(BAD_MODEL)
    (sub / "epp.yaml").write_text(BAD_PICKER)
    (sub / "fleet.yaml").write_text(BAD_FLEET)
    (sub / "empty.yaml").write_text("")
    (sub / "broken.yaml").write_text("kind: InferenceModel\nmetadata\n  name: x\n")
    code, out = run(str(tmp_path / "config"))
    assert code == 1
    lines = out.splitlines()
    assert f"{sub}/models.yaml:7:3: InferenceModel default/chat: spec.criticality:" in out
    picker = next(line for line in lines if "epp.yaml" in line)
    assert picker.startswith(f"{sub}/epp.yaml:5:3: EndpointPickerConfig:") and "no-such-scorer" in picker
    assert f"{sub}/fleet.yaml:5:5: LocalFleet spec.pods[0]: replicas: is required" in out
    assert f"{sub}/empty.yaml:1:1: empty file" in out
    broken = next(line for line in lines if "broken.yaml" in line)
    assert broken.startswith(f"{sub}/broken.yaml:2:1: invalid YAML"), broken  # the key missing its ':'
    assert "Traceback" not in out


def test_helm_values_are_skipped_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "values-prod.yaml").write_text("replicas: 3\nimage: {tag: v1}\n")
    (tmp_path / "pool.yaml").write_text(POOL)
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: x\nversion: 0.1.0\n")
    (chart / "templates" / "x.yaml").write_text("{{ .Values.x }}: [\n")
    code, out = run(str(tmp_path))
    assert code == 0, out
    assert "skipped" in out and "values-prod.yaml" in out and "Helm chart" in out


def test_missing_path_is_one_line_and_fails() -> None:
    code, out = run("/no/such/dir")
    assert code == 1 and "/no/such/dir: no such file or directory" in out and "Traceback" not in out
