"""Every scenario in bench/ parses, and its smoke version runs in virtual time and reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_gateway.bench.report import render, update_document
from inference_gateway.bench.runner import read_rows, run_scenario
from inference_gateway.bench.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "bench").glob("*.yaml"))


def test_there_are_scenarios() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {"seed", "overhead", "shared-prefix", "multi-lora", "criticality", "long-prompt"} <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_and_its_smoke_version_validate(path: Path) -> None:
    scenario = load_scenario(path, ROOT)
    smoke = scenario.smoke_version()
    if scenario.virtual:
        assert smoke.virtual is not None and smoke.virtual.duration_s <= 5
    for name, spec in scenario.policies.items():
        if spec.config is not None:
            assert scenario.resolve(spec.config).exists(), name


def test_unknown_policy_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nvirtual: {qps: [1], policies: [nope]}\n")
    with pytest.raises(ValueError, match="nope"):
        load_scenario(bad, ROOT)


VIRTUAL = [p for p in SCENARIOS if not p.stem.startswith("overhead")]


@pytest.mark.parametrize("path", VIRTUAL, ids=lambda p: p.stem)
def test_smoke_virtual_run_and_report(path: Path, tmp_path: Path) -> None:
    pytest.importorskip("inference_gateway.simulator.fleet")
    scenario = load_scenario(path, ROOT).smoke_version()
    written = run_scenario(scenario, tmp_path / "results", only={"virtual"})
    rows = read_rows(written["virtual"])
    assert scenario.virtual is not None
    assert {(r["policy"], r["qps"]) for r in rows} == {
        (p, q) for p in scenario.virtual.policies for q in scenario.virtual.qps
    }
    for row in rows:
        assert row["ok"] > 0 and row["throughput_rps"] > 0
        assert row["ntpot"]["p90"] >= row["tpot"]["p50"] > 0
        assert 0 <= row["server"]["kv_mean"] <= 1
    doc = tmp_path / "doc.md"
    doc.write_text(
        f"x\n<!-- generated:{scenario.name}-virtual -->\nold\n<!-- /generated:{scenario.name}-virtual -->\n"
    )
    blocks = render(tmp_path / "results", tmp_path / "img", tmp_path)
    assert update_document(doc, blocks) == [f"{scenario.name}-virtual"]
    text = doc.read_text()
    assert "old" not in text and "round-robin" in text
    assert (tmp_path / "img" / f"{scenario.name}-virtual.png").stat().st_size > 0


def _shape(config_text: str | None) -> list[tuple[str, list[str], list[tuple[str, float]], str]]:
    from inference_gateway.scheduling.config import load_config

    profiles = load_config(config_text).scheduler.profiles
    return [
        (
            name,
            [type(f).__name__ for f in p.filters],
            [(ws.scorer.name, ws.weight) for ws in p.scorers],
            type(p.picker).__name__,
        )
        for name, p in profiles.items()
    ]


def test_default_profile_file_matches_the_built_in_default() -> None:
    from inference_gateway.scheduling.config import load_config

    text = (ROOT / "bench" / "profiles" / "default.yaml").read_text()
    assert _shape(text) == _shape(None)
    mirror, builtin = load_config(text), load_config()
    assert mirror.flow_control_enabled and builtin.flow_control_enabled
    assert mirror.sections["flowControl"] == builtin.sections["flowControl"]
    assert mirror.saturation_detector().config == builtin.saturation_detector().config


@pytest.mark.parametrize("path", sorted((ROOT / "bench" / "profiles").rglob("*.yaml")), ids=lambda p: p.stem)
def test_every_profile_loads(path: Path) -> None:
    assert _shape(path.read_text())


def test_capacity_profile_is_the_default_plus_capacity_load_scorer() -> None:
    default = _shape(None)[0]
    capacity = _shape((ROOT / "bench" / "profiles" / "capacity-load.yaml").read_text())[0]
    assert capacity[:2] == default[:2] and capacity[3] == default[3]
    assert capacity[2] == [*default[2], ("capacity-load-scorer", 3)]
