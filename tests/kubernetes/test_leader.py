"""High availability: one leader per pool by a coordination.k8s.io/v1 Lease."""

from __future__ import annotations

import asyncio

from kubernetes import client as k8s

from inference_gateway.datastore.store import Datastore
from inference_gateway.sources.kubernetes import KubernetesController, LeaderElector, LeaseConfig
from tests.doubles.kube_apiserver import FakeKubeAPIServer

from . import objects as o
from .conftest import eventually, options

LEASE_API = "coordination.k8s.io/v1"


def lease_config(identity: str, release: bool = True) -> LeaseConfig:
    return LeaseConfig(
        "epp-lock",
        o.NS,
        identity,
        lease_duration_s=1.0,
        renew_deadline_s=0.6,
        retry_period_s=0.1,
        release_on_stop=release,
    )


async def test_one_leader_among_competing_candidates(
    apiserver: FakeKubeAPIServer, api: k8s.ApiClient
) -> None:
    electors = [LeaderElector(api, lease_config(f"epp-{i}")) for i in range(3)]
    for e in electors:
        await e.start()
    try:
        await eventually(lambda: any(e.is_leader for e in electors), what="a leader")
        for _ in range(40):  # never two leaders at once, and the same one keeps renewing
            assert sum(e.is_leader for e in electors) == 1
            await asyncio.sleep(0.02)
        leader = next(e for e in electors if e.is_leader)
        lease = apiserver.get(LEASE_API, "Lease", o.NS, "epp-lock")
        assert lease["spec"]["holderIdentity"] == leader.config.identity
        assert lease["spec"]["leaseDurationSeconds"] == 1
    finally:
        for e in electors:
            await e.stop()


async def test_release_on_stop_hands_over_at_once(apiserver: FakeKubeAPIServer, api: k8s.ApiClient) -> None:
    a, b = LeaderElector(api, lease_config("a")), LeaderElector(api, lease_config("b"))
    await a.start()
    await eventually(lambda: a.is_leader)
    await b.start()
    await asyncio.sleep(0.3)
    assert not b.is_leader
    loop = asyncio.get_running_loop()
    stopped_at = loop.time()
    await a.stop()
    await eventually(lambda: b.is_leader, what="b takes over")
    # Released: well before the 1s lease would have run out.
    assert loop.time() - stopped_at < 0.9
    lease = apiserver.get(LEASE_API, "Lease", o.NS, "epp-lock")
    assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
    await b.stop()


async def test_crashed_leader_is_replaced_after_the_lease_expires(
    apiserver: FakeKubeAPIServer, api: k8s.ApiClient
) -> None:
    a, b = LeaderElector(api, lease_config("a", release=False)), LeaderElector(api, lease_config("b"))
    await a.start()
    await eventually(lambda: a.is_leader)
    await b.start()
    await asyncio.sleep(0.2)
    loop = asyncio.get_running_loop()
    crashed_at = loop.time()
    await a.stop()  # stops renewing and does not release: as if the process died
    await eventually(lambda: b.is_leader, within=5, what="b takes over after expiry")
    assert loop.time() - crashed_at >= 0.8, "must wait out the lease it last saw renewed"
    await b.stop()


async def test_controllers_hand_over_status_writing(apiserver: FakeKubeAPIServer, api: k8s.ApiClient) -> None:
    apiserver.apply(o.pool())
    apiserver.apply(o.pod("a", "10.2.0.1"))
    apiserver.apply(o.model("chat", "llama"))
    first = KubernetesController(Datastore(), options("epp-0"), api)
    await first.start()
    await eventually(lambda: first.is_leader and first.ready())
    second = KubernetesController(Datastore(), options("epp-1"), api)
    serving_follower = KubernetesController(
        Datastore(), options("epp-2", followers_serve=True, write_status=True), api
    )
    await second.start()
    await serving_follower.start()
    try:
        await second.wait_synced()
        await serving_follower.wait_synced()
        await eventually(lambda: len(second.store.endpoints()) == 1, what="follower datastore synced")
        assert {e.address for e in second.store.endpoints()} == {e.address for e in first.store.endpoints()}
        assert not second.is_leader and not second.ready(), "followers report not-ready by default"
        assert serving_follower.ready(), "followers_serve: a follower serves from its read-only datastore"

        apiserver.apply(o.model("chat-2", "mixtral"))
        await eventually(lambda: _accepted(apiserver, "chat-2"), what="leader writes status")
        assert second.status_writes == 0 and serving_follower.status_writes == 0

        await first.stop()
        await eventually(lambda: second.is_leader or serving_follower.is_leader, what="a follower takes over")
        apiserver.apply(o.model("chat-3", "qwen"))
        new_leader = second if second.is_leader else serving_follower
        await eventually(lambda: _accepted(apiserver, "chat-3"), what="new leader writes status")
        await eventually(lambda: new_leader.status_writes > 0, what="written by the new leader")
        assert new_leader.ready()
    finally:
        await second.stop()
        await serving_follower.stop()


def _accepted(server: FakeKubeAPIServer, name: str) -> bool:
    obj = server.get(o.X_API, "InferenceModel", o.NS, name)
    return any(
        c["type"] == "Accepted" and c["status"] == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )
