"""FileSource: a watched directory of manifests, applied live without disturbing requests."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from inference_gateway.api.errors import ManifestError
from inference_gateway.api.manifests import ResourceSet, parse_yaml
from inference_gateway.api.types import Criticality, ObjectRef
from inference_gateway.datastore.store import Datastore
from inference_gateway.requestcontrol.director import Director
from inference_gateway.requestcontrol.resolve import ModelResolver
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from inference_gateway.sources.files import FileSource

APPLY_WITHIN_S = 1.0
POOL = ObjectRef("default", "pool")

POOL_YAML = """\
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: pool}
spec:
  selector: {matchLabels: {app: vllm}}
  targetPorts: [{number: 8000}]
  endpointPickerRef: {name: pool-epp, port: {number: 9002}}
"""


def pod_yaml(name: str, ip: str) -> str:
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: vllm}}}}\n"
        f'status: {{podIP: {ip}, conditions: [{{type: Ready, status: "True"}}]}}\n'
    )


def model_yaml(v1: int, v2: int, criticality: str = "Critical") -> str:
    return f"""\
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {{name: food-review}}
spec:
  modelName: food-review
  criticality: {criticality}
  poolRef: {{name: pool}}
  targetModels: [{{name: v1, weight: {v1}}}, {{name: v2, weight: {v2}}}]
"""


def write_atomically(path: Path, text: str) -> None:
    """How editors and Kubernetes ConfigMap mounts update files: write aside, then rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def wait_until(check: Callable[[], bool], within_s: float = APPLY_WITHIN_S) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within_s:
            raise AssertionError(f"not applied within {within_s} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "pool.yaml").write_text(POOL_YAML)
    (tmp_path / "pods.yaml").write_text(pod_yaml("vllm-0", "127.0.0.31"))
    (tmp_path / "models.yaml").write_text(model_yaml(90, 10))
    return tmp_path


@pytest.fixture
async def source(config_dir: Path):
    store = Datastore()
    fs = FileSource(store, config_dir)
    await fs.start()
    try:
        yield fs
    finally:
        await fs.stop()


def _model(store: Datastore):
    view = store.pool(POOL)
    assert view is not None
    return view.models["food-review"]


async def test_invalid_manifests_fail_start_with_a_clear_message(config_dir: Path) -> None:
    (config_dir / "models.yaml").write_text(model_yaml(90, 0))
    fs = FileSource(Datastore(), config_dir)
    with pytest.raises(ManifestError) as info:
        await fs.start()
    assert str(info.value) == (
        f"{config_dir / 'models.yaml'}: line 1: InferenceModel default/food-review: "
        "spec.targetModels[1].weight: 0 must be an integer from 1 to 1000000"
    )


async def test_adding_a_pod_takes_effect_within_a_second(source: FileSource, config_dir: Path) -> None:
    store = source.store
    first = store.endpoints()[0]
    write_atomically(
        config_dir / "pods.yaml",
        pod_yaml("vllm-0", "127.0.0.31") + "---\n" + pod_yaml("vllm-1", "127.0.0.32"),
    )
    await wait_until(lambda: len(store.endpoints()) == 2)
    assert store.endpoint("127.0.0.31:8000") is first  # the unchanged pod keeps its Endpoint
    assert store.endpoint("127.0.0.32:8000").name == "vllm-1-rank-0"  # type: ignore[union-attr]


async def test_weight_and_criticality_changes_take_effect_within_a_second(
    source: FileSource, config_dir: Path
) -> None:
    store = source.store
    assert _model(store).criticality is Criticality.CRITICAL
    (config_dir / "models.yaml").write_text(model_yaml(1, 3, "Sheddable"))  # edited in place
    await wait_until(lambda: _model(store).criticality is Criticality.SHEDDABLE)
    assert [t.weight for t in _model(store).target_models] == [1, 3]


async def test_a_bad_edit_keeps_the_last_good_state(source: FileSource, config_dir: Path) -> None:
    store = source.store
    write_atomically(config_dir / "models.yaml", model_yaml(90, 10, "Urgent"))
    await wait_until(lambda: source.last_error is not None)
    assert "spec.criticality: 'Urgent' must be one of" in str(source.last_error)
    assert _model(store).criticality is Criticality.CRITICAL
    write_atomically(config_dir / "models.yaml", model_yaml(90, 10, "Standard"))
    await wait_until(lambda: _model(store).criticality is Criticality.STANDARD)
    assert source.last_error is None


async def test_deleting_a_file_removes_its_objects(source: FileSource, config_dir: Path) -> None:
    (config_dir / "models.yaml").unlink()
    await wait_until(lambda: not source.store.pool(POOL).models)  # type: ignore[union-attr]


async def test_transform_adds_what_the_files_do_not_hold(config_dir: Path) -> None:
    extra = parse_yaml(pod_yaml("simulated-0", "127.0.0.40"), "local fleet").pods

    def add_pods(resources: ResourceSet) -> ResourceSet:
        return ResourceSet(
            resources.pools,
            resources.models,
            resources.objectives,
            resources.rewrites,
            resources.pods + extra,
        )

    store = Datastore()
    fs = FileSource(store, config_dir, transform=add_pods)
    await fs.start()
    try:
        assert {e.address for e in store.endpoints()} == {"127.0.0.31:8000", "127.0.0.40:8000"}
        write_atomically(config_dir / "models.yaml", model_yaml(5, 5))
        await wait_until(lambda: _model(store).target_models[0].weight == 5)
        assert store.endpoint("127.0.0.40:8000") is not None
    finally:
        await fs.stop()


async def test_watching_a_single_file(config_dir: Path) -> None:
    combined = config_dir / "all.yaml"
    combined.write_text("---\n".join([POOL_YAML, pod_yaml("vllm-0", "127.0.0.31"), model_yaml(1, 1)]))
    store = Datastore()
    fs = FileSource(store, combined)
    await fs.start()
    try:
        write_atomically(
            combined, "---\n".join([POOL_YAML, pod_yaml("vllm-0", "127.0.0.31"), model_yaml(2, 1)])
        )
        await wait_until(lambda: _model(store).target_models[0].weight == 2)
        reloads = fs.reloads
        (config_dir / "models.yaml").write_text("not: [valid")  # a sibling, not watched
        await asyncio.sleep(0.3)
        assert (fs.reloads, fs.last_error) == (reloads, None)
    finally:
        await fs.stop()


async def test_stop_stops_applying_changes(source: FileSource, config_dir: Path) -> None:
    await source.stop()
    write_atomically(config_dir / "models.yaml", model_yaml(1, 1, "Sheddable"))
    await asyncio.sleep(0.3)
    assert _model(source.store).criticality is Criticality.CRITICAL


async def test_weights_change_under_load_without_a_failed_request(
    source: FileSource, config_dir: Path
) -> None:
    store = source.store
    write_atomically(
        config_dir / "pods.yaml",
        pod_yaml("vllm-0", "127.0.0.31") + "---\n" + pod_yaml("vllm-1", "127.0.0.32"),
    )
    await wait_until(lambda: len(store.endpoints()) == 2)
    endpoints = {e.address: e for e in store.endpoints()}
    director = Director(
        store, PoolRuntime(load_config(), flow_control=False), resolver=ModelResolver(store, random.Random(5))
    )
    stop = asyncio.Event()
    served: Counter[str] = Counter()
    attempts = 0
    failures: list[BaseException] = []

    async def client() -> None:
        body = orjson.dumps({"model": "food-review", "prompt": "hi"})
        nonlocal attempts
        while not stop.is_set():
            attempts += 1
            ctx = director.new_context({})
            try:
                decision = await director.route(ctx, body)
                served[orjson.loads(decision.body or b"{}")["model"]] += 1
                await asyncio.sleep(0)  # the request is "in flight" across a reload
            except BaseException as exc:  # any failure at all fails the test
                failures.append(exc)
            finally:
                director.on_complete(ctx)

    clients = [asyncio.create_task(client()) for _ in range(4)]
    for v1, v2 in [(1, 1_000_000), (1_000_000, 1), (1, 1_000_000)]:
        write_atomically(config_dir / "models.yaml", model_yaml(v1, v2))
        await wait_until(lambda v1=v1: _model(store).target_models[0].weight == v1)  # type: ignore[misc]
        await asyncio.sleep(0.05)
    served.clear()
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*clients)

    assert failures == []
    assert attempts > 100
    assert served["v2"] > 0 and served["v2"] >= 0.99 * sum(served.values())  # the last weights rule
    assert {e.address: e for e in store.endpoints()} == endpoints  # same Endpoint objects throughout
    assert all(e.in_flight == 0 for e in store.endpoints())
