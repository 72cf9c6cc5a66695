"""Prefix sync between real EPP replicas over loopback gRPC: convergence, self-detection,
peers leaving and returning, overflow, mutual TLS, DNS discovery and metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from inference_gateway.api.manifests import parse_yaml
from inference_gateway.datastore.store import Datastore
from inference_gateway.epp import EndpointPicker, EPPOptions
from inference_gateway.local.stack import free_port
from inference_gateway.observability.tls import mint_local_pki
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.plugins.prefix_cache_scorer import PrefixCacheScorer
from inference_gateway.scheduling.prefix_sync import (
    DnsPeers,
    PrefixSync,
    PrefixSyncOptions,
    StaticPeers,
    prefix_scorers,
)
from inference_gateway.scheduling.types import CycleState, SchedulingRequest
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.server import SimulatedServer

SYSTEM = "You are the support assistant of a bicycle shop. Be brief and friendly, cite part numbers. " * 8


async def until(check: Callable[[], bool], within_s: float = 5.0, step_s: float = 0.002) -> float:
    """Seconds until `check()` held; fails the test after `within_s`."""
    start = time.perf_counter()
    for _ in range(int(within_s / step_s)):
        if check():
            return time.perf_counter() - start
        await asyncio.sleep(step_s)
    pytest.fail(f"condition not met within {within_s}s")


def loopback_store(target_port: int) -> Datastore:
    docs = f"""
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {{name: pool}}
spec:
  selector: {{matchLabels: {{app: sim}}}}
  targetPorts: [{{number: {target_port}}}]
  endpointPickerRef: {{name: epp, port: {{number: 9002}}}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {{name: base}}
spec: {{modelName: base-model, poolRef: {{name: pool}}}}
""" + "".join(
        f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: pod-{i}, labels: {{app: sim}}}}\n"
        f"status: {{podIP: 127.0.0.{10 + i}, conditions: [{{type: Ready, status: 'True'}}]}}\n"
        for i in range(3)
    )
    store = Datastore()
    store.replace_all(parse_yaml(docs, "test"))
    now = time.monotonic()
    for e in store.endpoints():
        e.metrics.updated_at = now
        e.metrics.served_models = frozenset({"base-model"})
    store.synced = True
    return store


def prefix_scorer(epp: EndpointPicker) -> PrefixCacheScorer:
    return prefix_scorers(epp.config.plugins)["prefix-cache-scorer"]


def scores(epp: EndpointPicker, prompt: str) -> dict[str, float]:
    endpoints = list(epp.store.endpoints())
    req = SchedulingRequest("probe", "base-model", "base-model", prompt=prompt)
    values = prefix_scorer(epp).score(CycleState(), req, endpoints)
    return {e.address: v for e, v in zip(endpoints, values, strict=True)}


async def route(epp: EndpointPicker, prompt: str) -> str:
    ctx = epp.director.new_context({})
    decision = await epp.director.route(ctx, orjson.dumps({"model": "base-model", "prompt": prompt}))
    epp.director.on_complete(ctx)
    return decision.destination.split(",")[0]


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[EndpointPicker, EndpointPicker]]:
    """Two EPP replicas of one pool of three simulated vLLM pods, each told about the other's sync port."""
    target_port, ports = free_port(), (free_port(), free_port())
    pods = [SimulatedServer(ServerConfig(served_model_name="base-model", seed=i)) for i in range(3)]
    for i, pod in enumerate(pods):
        await pod.start(f"127.0.0.{10 + i}", target_port)
    epps = []
    for mine, theirs in (ports, ports[::-1]):
        sync = PrefixSyncOptions(port=mine, peers=(f"127.0.0.1:{theirs}", f"127.0.0.1:{mine}"))
        options = EPPOptions(grpc_port=0, health_port=None, metrics_port=None, prefix_sync=sync)
        epps.append(EndpointPicker(options, store=loopback_store(target_port)))
    for epp in epps:
        await epp.start()
    try:
        yield epps[0], epps[1]
    finally:
        for epp in epps:
            await epp.stop(0)
        for pod in pods:
            await pod.stop()


async def test_a_pick_on_one_replica_steers_the_other(
    replicas: tuple[EndpointPicker, EndpointPicker],
) -> None:
    a, b = replicas
    assert a.prefix_sync is not None and b.prefix_sync is not None
    await until(lambda: bool(a.prefix_sync.connected_peers() and b.prefix_sync.connected_peers()))
    question = SYSTEM + "Do you stock 11-speed chains?"
    assert set(scores(b, question).values()) == {0.0}
    picked = await route(a, SYSTEM + "What tyre pressure for gravel?")
    lag = await until(lambda: scores(b, question)[picked] > 0.5, within_s=2.0)
    print(f"replica B scored the endpoint {1000 * lag:.1f} ms after replica A's pick")
    assert max(scores(b, question).values()) == scores(b, question)[picked]
    assert await route(b, question) == picked
    # B's own pick is published to A; A's received updates were never sent back to B.
    await until(lambda: a.prefix_sync.hub.stats.applied >= 1)
    assert b.prefix_sync.hub.stats.applied == 1
    assert b.prefix_sync.hub.stats.published == 1


async def test_a_replica_listed_as_its_own_peer_stops_dialling_itself(
    replicas: tuple[EndpointPicker, EndpointPicker],
) -> None:
    a, _ = replicas
    assert a.prefix_sync is not None
    own = f"127.0.0.1:{a.prefix_sync.port}"
    await until(lambda: a.prefix_sync.links[own].is_self)
    await route(a, SYSTEM + "hello")
    assert a.prefix_sync.hub.stats.received == 0
    assert len(a.prefix_sync.links[own].queue) == 0


def standalone(
    port: int = 0, peers: tuple[str, ...] = (), **kw: object
) -> tuple[PrefixSync, PrefixCacheScorer]:
    config = load_config()
    sync = PrefixSync.for_plugins(config.plugins, PrefixSyncOptions(port=port, peers=peers, **kw))  # type: ignore[arg-type]
    return sync, prefix_scorers(config.plugins)["prefix-cache-scorer"]


async def test_updates_queued_while_a_peer_is_away_arrive_when_it_returns() -> None:
    port = free_port()
    sender, left = standalone(peers=(f"127.0.0.1:{port}",))
    await sender.start()
    try:
        left.listeners[0]("10.9.0.1:8000", [11, 12, 13], None)  # peer not up yet: queued
        receiver, right = standalone(port)
        await receiver.start()
        await until(lambda: right.index.match([11, 12, 13]) == {"10.9.0.1:8000": 3})
        await receiver.stop(0)
        await until(lambda: not sender.connected_peers())
        left.listeners[0]("10.9.0.2:8000", [21, 22], None)  # peer gone: queued again
        receiver, right = standalone(port)
        await receiver.start()
        await until(lambda: right.index.match([21, 22]) == {"10.9.0.2:8000": 2})
        await receiver.stop(0)
    finally:
        await sender.stop()


async def test_an_absent_peer_costs_bounded_memory_and_drops_are_counted() -> None:
    registry = CollectorRegistry()
    config = load_config()
    options = PrefixSyncOptions(port=0, peers=(f"127.0.0.1:{free_port()}",), queue_limit=5)
    sync = PrefixSync.for_plugins(config.plugins, options, registry)
    publish = prefix_scorers(config.plugins)["prefix-cache-scorer"].listeners[0]
    await sync.start()
    try:
        for i in range(12):
            publish("10.9.0.1:8000", [i], None)
        (link,) = sync.links.values()
        assert len(link.queue) == 5
        text = generate_latest(registry).decode()
        assert 'inference_extension_prefix_sync_updates_dropped_total{reason="overflow"} 7.0' in text
        assert "inference_extension_prefix_sync_updates_published_total 12.0" in text
        assert "inference_extension_prefix_sync_peers_connected 0.0" in text
    finally:
        await sync.stop()


async def test_mutual_tls_admits_only_peers_with_a_certificate_from_the_ca(tmp_path: Path) -> None:
    pki = mint_local_pki(tmp_path / "ca")
    other = mint_local_pki(tmp_path / "other-ca")
    port = free_port()
    receiver, right = standalone(port, tls=pki.server)
    trusted, left = standalone(peers=(f"127.0.0.1:{port}",), tls=pki.server, tls_server_name="localhost")
    stranger, foreign = standalone(
        peers=(f"127.0.0.1:{port}",), tls=other.server, tls_server_name="localhost"
    )
    for s in (receiver, trusted, stranger):
        await s.start()
    try:
        foreign.listeners[0]("10.9.0.3:8000", [31], None)
        left.listeners[0]("10.9.0.1:8000", [41, 42], None)
        await until(lambda: right.index.match([41, 42]) == {"10.9.0.1:8000": 2})
        assert right.index.match([31]) == {}
        assert not stranger.connected_peers()
    finally:
        for s in (receiver, trusted, stranger):
            await s.stop()


async def test_dns_peers_follow_the_name_and_changes_are_applied() -> None:
    port = free_port()
    assert f"127.0.0.1:{port}" in await DnsPeers("localhost", port).resolve()

    class Scripted:
        def __init__(self) -> None:
            self.answer = {"127.0.0.1:1"}

        async def resolve(self) -> set[str]:
            return set(self.answer)

    source = Scripted()
    config = load_config()
    sync = PrefixSync(prefix_scorers(config.plugins), PrefixSyncOptions(port=0), sources=[source])
    await sync.start()
    try:
        assert set(sync.links) == {"127.0.0.1:1"}
        source.answer = {"127.0.0.1:2", "127.0.0.1:3"}
        await sync.refresh_peers()
        assert set(sync.links) == {"127.0.0.1:2", "127.0.0.1:3"}
    finally:
        await sync.stop()


def test_peer_addresses_are_validated() -> None:
    with pytest.raises(ValueError, match="host:port"):
        PrefixSyncOptions(peers_dns="epp-peers.default.svc").sources()
    (source,) = PrefixSyncOptions(peers_dns="epp-peers.default.svc.cluster.local:9004").sources()
    assert source == DnsPeers("epp-peers.default.svc.cluster.local", 9004)
    assert PrefixSyncOptions(peers=("127.0.0.1:1",)).sources() == [StaticPeers(("127.0.0.1:1",))]
