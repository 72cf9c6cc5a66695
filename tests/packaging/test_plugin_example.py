"""docs/plugins.md's example plugin, installed as pip would and named in YAML, changes decisions."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import pytest

from inference_gateway.api.types import ObjectRef
from inference_gateway.datastore.endpoint import Endpoint, EndpointMetrics
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import ConfigError, load_config
from inference_gateway.scheduling.interfaces import Scorer
from inference_gateway.scheduling.types import SchedulingRequest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugins" / "zone-affinity"
ZONE = "topology.kubernetes.io/zone"

CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: zone-affinity-scorer
  parameters: {header: x-client-zone}
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 1
  - pluginRef: zone-affinity-scorer
    weight: 2
  - pluginRef: max-score-picker
"""


@pytest.fixture
def installed_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example as `pip install` leaves it: the module importable, and a dist-info whose
    entry points are the ones its pyproject.toml declares."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    dist = tmp_path / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    groups = project["entry-points"].items()
    (dist / "entry_points.txt").write_text(
        "".join(f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) for g, entries in groups)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(EXAMPLE))


def endpoint(name: str, zone: str, waiting: int) -> Endpoint:
    metrics = EndpointMetrics(waiting_queue=waiting, updated_at=time.monotonic())
    ip = f"10.0.0.{len(name)}{ord(name[-1]) % 10}"
    return Endpoint(name, ObjectRef("default", name), ip, 8000, {ZONE: zone}, metrics=metrics)


async def pick(runtime: PoolRuntime, endpoints: list[Endpoint], headers: dict[str, str]) -> str:
    request = SchedulingRequest("r1", "m", "m", prompt="hello", headers=headers, pool="default")
    decision = await runtime.decide(request, lambda: endpoints)
    decision.complete()
    return decision.endpoints[0].name


@pytest.mark.usefixtures("installed_example")
async def test_the_example_scorer_named_in_yaml_steers_the_pick() -> None:
    runtime = PoolRuntime(load_config(CONFIG))
    (scorer,) = [p for p in runtime.scheduler.plugins() if p.type_name == "zone-affinity-scorer"]
    assert isinstance(scorer, Scorer)
    endpoints = [endpoint("east-pod", "east", waiting=3), endpoint("west-pod", "west", waiting=0)]
    try:
        # No zone named: the queue decides (west is idle). The client's zone outweighs the queue.
        assert await pick(runtime, endpoints, {}) == "west-pod"
        assert await pick(runtime, endpoints, {"x-client-zone": "east"}) == "east-pod"
        assert await pick(runtime, endpoints, {"x-client-zone": "west"}) == "west-pod"
    finally:
        await runtime.close()


def test_without_the_package_the_type_is_not_registered() -> None:
    with pytest.raises(ConfigError, match="plugin type 'zone-affinity-scorer' is not registered"):
        load_config(CONFIG)
