"""One EPP, two pools: the pool named by the route's gRPC metadata wins, and each pool schedules
with its own EndpointPickerConfig."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import grpc
import orjson
import pytest
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.api.manifests import parse_yaml
from inference_gateway.datastore.store import Datastore
from inference_gateway.epp import EndpointPicker, EPPOptions
from inference_gateway.extproc.server import serve
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime, PoolRuntimes
from inference_gateway.scheduling.config import ConfigError
from inference_gateway.scheduling.types import SchedulingRequest
from tests.extproc.test_extproc_protocol import request_stream, set_headers

POOLS = """
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: pool-a}
spec:
  selector: {matchLabels: {app: a}}
  targetPorts: [{number: 8000}]
  endpointPickerRef: {name: epp, port: {number: 9002}}
---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: pool-b}
spec:
  selector: {matchLabels: {app: b}}
  targetPorts: [{number: 8000}]
  endpointPickerRef: {name: epp, port: {number: 9002}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: m-a}
spec: {modelName: m, poolRef: {name: pool-a}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: m-b}
spec: {modelName: m, poolRef: {name: pool-b}}
"""

QUEUE_ONLY = """
plugins: [{type: queue-scorer}]
schedulingProfiles: [{name: default, plugins: [{pluginRef: queue-scorer}]}]
"""


def pod(name: str, app: str, ip: str) -> str:
    return (
        f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {app}}}}}\n"
        f"status: {{podIP: {ip}, conditions: [{{type: Ready, status: 'True'}}]}}\n"
    )


def two_pool_store() -> Datastore:
    store = Datastore()
    pods = pod("a-0", "a", "10.0.0.1") + pod("a-1", "a", "10.0.0.2") + pod("b-0", "b", "10.0.1.1")
    store.replace_all(parse_yaml(POOLS + pods, "test"))
    for e in store.endpoints():
        e.metrics.updated_at = time.monotonic()
    return store


def pool_runtimes(**per_pool: str) -> PoolRuntimes:
    configs = per_pool or {"pool-b": QUEUE_ONLY}
    return PoolRuntimes(PoolRuntime(), {p: PoolRuntime.from_text(t, name=p) for p, t in configs.items()})


@pytest.fixture
async def stub() -> AsyncIterator[pb_grpc.ExternalProcessorStub]:
    director = Director(two_pool_store(), pool_runtimes())
    server, port = await serve(director, "127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield pb_grpc.ExternalProcessorStub(channel)
    finally:
        await channel.close()
        await server.stop(0)


async def destination(
    stub: pb_grpc.ExternalProcessorStub, headers: dict[str, str], metadata: tuple[tuple[str, str], ...] = ()
) -> str:
    body = orjson.dumps({"model": "m", "prompt": "hi"})

    async def gen() -> AsyncIterator[pb.ProcessingRequest]:
        for m in request_stream("duplex", body, headers=headers):
            yield m

    responses = [r async for r in stub.Process(gen(), metadata=metadata)]
    return set_headers(responses[0], "request_headers")["x-gateway-destination-endpoint"]


async def test_route_metadata_names_the_pool_and_beats_a_client_header(
    stub: pb_grpc.ExternalProcessorStub,
) -> None:
    spoof = {"x-gateway-inference-pool": "default/pool-a"}
    # Without route metadata the header is honoured (single-cluster gateways route by it) ...
    assert (await destination(stub, spoof)).split(",")[0].startswith("10.0.0.")
    # ... but the pool Envoy routed to, sent as gRPC initial metadata, wins.
    routed = await destination(stub, spoof, (("x-gateway-inference-pool", "default/pool-b"),))
    assert routed == "10.0.1.1:8000"


def test_each_pool_uses_its_own_config_and_others_the_default() -> None:
    runtimes = pool_runtimes()
    store = two_pool_store()
    for pool, scorers in (
        ("default/pool-b", {"queue-scorer"}),
        (
            "default/pool-a",
            {"queue-scorer", "kv-cache-utilization-scorer", "prefix-cache-scorer", "lora-affinity-scorer"},
        ),
        ("other/pool-b", {"queue-scorer"}),  # a bare name in the mapping matches any namespace
    ):
        name = pool.rpartition("/")[2]
        (view,) = [v for v in store.pools() if v.pool.ref.name == name]
        request = SchedulingRequest("r", "m", "m", prompt="hello", pool=pool)
        result, _ = runtimes.for_pool(pool).scheduler.schedule(request, view.endpoints, explain=True)
        explained = result.explain()["profiles"]["default"]
        assert set(explained["weights"]) == scorers, pool
        assert {e.address for e in result.endpoints} <= {e.address for e in view.endpoints}


def test_namespaced_key_beats_bare_name() -> None:
    specific, bare = PoolRuntime.from_text(QUEUE_ONLY), PoolRuntime.from_text(QUEUE_ONLY)
    runtimes = PoolRuntimes(PoolRuntime(), {"team/p": specific, "p": bare})
    assert runtimes.for_pool("team/p") is specific
    assert runtimes.for_pool("default/p") is bare
    assert runtimes.for_pool("default/q") is runtimes.default


def test_the_epp_builds_pool_runtimes_and_names_a_broken_pool_config() -> None:
    epp = EndpointPicker(EPPOptions(metrics_port=None, health_port=None, pool_configs={"pool-b": QUEUE_ONLY}))
    pool_b = epp.director.runtimes.for_pool("default/pool-b")
    assert pool_b is not epp.director.runtimes.default
    assert "queue-scorer" in pool_b.config.plugins and "prefix-cache-scorer" not in pool_b.config.plugins
    assert list(EndpointPicker(EPPOptions(metrics_port=None, health_port=None)).director.runtimes) != []
    with pytest.raises(ConfigError, match="pool pool-b"):
        EndpointPicker(EPPOptions(metrics_port=None, health_port=None, pool_configs={"pool-b": "plugins: 3"}))
