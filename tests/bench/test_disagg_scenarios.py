"""Scenario policies with llm-d roles (disaggregated fleets): what the loader refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_gateway.bench.scenario import load_scenario

ROOT = Path(__file__).parents[2]
BASE = """
name: bad
workload: {kind: multimodal}
policies:
  p: {kind: KIND, config: bench/profiles/e-pd.yaml, roles: ROLES}
virtual: {qps: [1], servers: 4, policies: [p]}
"""


@pytest.mark.parametrize(
    ("kind", "roles", "message"),
    [
        ("epp", "[encode, decode]", "2 roles for 4 servers"),
        ("round-robin", "[encode, decode, decode, decode]", "roles need kind epp"),
    ],
)
def test_bad_roles_are_one_line_errors(tmp_path: Path, kind: str, roles: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BASE.replace("KIND", kind).replace("ROLES", roles))
    with pytest.raises(ValueError, match=message) as err:
        load_scenario(path, ROOT)
    assert str(path) in str(err.value)


def test_the_shipped_disaggregated_scenarios_load() -> None:
    for name in ("multimodal", "pd", "pd-short"):
        scenario = load_scenario(ROOT / "bench" / f"{name}.yaml", ROOT)
        assert any(p.roles for p in scenario.policies.values())
