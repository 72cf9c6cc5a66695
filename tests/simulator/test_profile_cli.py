"""Profiles (YAML data, calibration) and the `simulate` CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inference_gateway.simulator.cli import app
from inference_gateway.simulator.profile import list_profiles, load_profile

ROOT = Path(__file__).resolve().parents[2]
# shared/ sits beside the project root (or above a worktree); skip where it is absent
_CANDIDATES = [d / "shared" / "calibration" / "h100-llama2-7b.md" for d in (ROOT, *ROOT.parents[:2])]
CALIBRATION = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[0])


def test_default_profile_reproduces_the_shared_calibration_table() -> None:
    if not CALIBRATION.exists():
        pytest.skip("shared calibration figures not available")
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|$", CALIBRATION.read_text(), re.M)
    assert len(rows) >= 5
    profile = load_profile("h100-llama2-7b")
    for tokens, ms in rows:
        assert profile.forward_ms(int(tokens)) == pytest.approx(float(ms), rel=0.02)


def test_profiles_ship_and_load_from_a_user_path(tmp_path: Path) -> None:
    assert {"h100-llama2-7b", "a100-llama2-7b", "l4-llama2-7b"} <= set(list_profiles())
    custom = tmp_path / "tiny.yaml"
    custom.write_text(
        "name: tiny\nforward_ms: [[1, 2.0], [101, 4.0]]\nattention_ms_per_10k_tokens: 1.0\n"
        "num_gpu_blocks: 50\n"
    )
    p = load_profile(custom)
    assert (p.name, p.num_gpu_blocks) == ("tiny", 50)
    assert p.forward_ms(51) == pytest.approx(3.0)
    assert p.forward_ms(201) == pytest.approx(6.0)  # extended linearly past the last point
    assert p.step_seconds(51, 10_000, False) == pytest.approx(0.004)


def test_bad_profiles_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        load_profile("no-such-profile")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nforward_ms: [[1, 2.0]]\n")
    with pytest.raises(ValueError, match="forward_ms"):
        load_profile(bad)


def test_cli_lists_profiles_and_runs_a_virtual_fleet() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["profiles"])
    assert out.exit_code == 0 and "h100-llama2-7b" in out.output
    out = runner.invoke(app, ["fleet", "--servers", "2", "--qps", "20", "--duration", "2"])
    assert out.exit_code == 0, out.output
    assert re.search(r"completed\s*│\s*\d+", out.output)
    bad = runner.invoke(app, ["--metrics-flavor", "nope"])
    assert bad.exit_code != 0
