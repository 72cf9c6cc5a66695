"""Upstream's conformance scenarios (gateway-api-inference-extension v1.5.0 conformance/tests),
ported to run against the real Envoy twice: configured as upstream's reference config
(tests/compat/fixtures), and as our own `envoy-config` built from the same HTTPRoutes.

The EPP runs with the configuration the conformance suite gives its EPPs
(conformance/resources/base.yaml: header-based-testing-filter, destination-endpoint-served-
verifier), so a request picks its endpoints with the `test-epp-endpoint-selection` header, and
each scenario checks which simulated pods actually served the traffic. One stack for the module:
three pools (primary FailClose, secondary FailOpen, a data-parallel pool with three ports per pod).

Status scenarios (InferencePoolAccepted, ResolvedRefs, InvalidEPPService) are the EPP
controller's and live in tests/kubernetes/test_status.py; EppUnAvailableFailOpen is
tests/e2e/test_failures.py::test_fail_open_reaches_a_pod_when_epp_is_down.
"""

from __future__ import annotations

import collections
import json
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from inference_gateway.api.manifests import load_path
from inference_gateway.commands.envoy_setup import EnvoySetupFlags, build_setup, write_setup
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.server import SimulatedServer
from tests.compat.stack import (
    FIXTURES,
    LoopThread,
    envoy_process,
    epp_process,
    free_port,
    reference_envoy,
)

pytestmark = pytest.mark.e2e

MODEL = "conformance-fake-model"
SELECT = "test-epp-endpoint-selection"
SERVED = "x-conformance-test-served-endpoint"
POOLS = {
    "primary-inference-pool": (["127.0.5.1", "127.0.5.2", "127.0.5.3"], 1, "FailClose"),
    "secondary-inference-pool": (["127.0.6.1", "127.0.6.2", "127.0.6.3"], 1, "FailOpen"),
    "dp-inference-pool": (["127.0.7.1", "127.0.7.2"], 3, "FailClose"),
}
# InferencePoolAppProtocol: one pod per pool, behind an Envoy "sidecar" that reports the
# protocol the gateway spoke to it (x-served-protocol) and forwards to the simulated vLLM.
APP_PROTOCOL_POOLS = {
    "h2c-inference-pool": ("127.0.8.1", "kubernetes.io/h2c"),
    "http-inference-pool": ("127.0.9.1", "http"),
}
SERVED_PROTOCOL = "x-served-protocol"
# Upstream tells scenarios apart by path prefix in front of an echo server; the simulated vLLM
# serves /v1/..., so here each scenario has its own hostname, and MultipleRules splits on path.
COMPLETIONS, CHAT = "/v1/completions", "/v1/chat/completions"
ROUTES: list[tuple[str, str, str, list[tuple[str, int, int | None]]]] = [
    # name, hostname, path prefix, backendRefs (pool, weight, port)
    ("primary", "primary.example.com", "/v1", [("primary-inference-pool", 1, None)]),
    ("dp", "dp.example.com", "/v1", [("dp-inference-pool", 1, None)]),
    ("served", "served.example.com", "/v1", [("primary-inference-pool", 1, None)]),
    (
        "weighted",
        "weighted.example.com",
        "/v1",
        [("primary-inference-pool", 70, None), ("secondary-inference-pool", 30, None)],
    ),
    ("rule-primary", "multi.example.com", COMPLETIONS, [("primary-inference-pool", 1, None)]),
    ("rule-secondary", "multi.example.com", CHAT, [("secondary-inference-pool", 1, None)]),
    ("second-gateway", "secondary.example.com", "/v1", [("secondary-inference-pool", 1, None)]),
    ("port-unspecified", "port-unspecified.example.com", "/v1", [("primary-inference-pool", 1, None)]),
    ("port-matching", "port-matching.example.com", "/v1", [("primary-inference-pool", 1, 3000)]),
    ("port-non-matching", "port-non-matching.example.com", "/v1", [("primary-inference-pool", 1, 9999)]),
    ("invalid-ref", "invalid-ref.example.com", "/v1", [("non-existent-pool", 1, None)]),
    ("appprotocol-h2c", "appprotocol-h2c.example.com", "/v1", [("h2c-inference-pool", 1, None)]),
    ("appprotocol-http", "appprotocol-http.example.com", "/v1", [("http-inference-pool", 1, None)]),
]


def _pool(name: str, ports: list[int], mode: str, app_protocol: str = "http") -> dict[str, Any]:
    return {
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "targetPorts": [{"number": p} for p in ports],
            "appProtocol": app_protocol,
            "endpointPickerRef": {"name": "epp", "port": {"number": 9002}, "failureMode": mode},
        },
    }


def _manifests(port: int) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for pool, (host, app_protocol) in APP_PROTOCOL_POOLS.items():
        docs.append(_pool(pool, [port], "FailClose", app_protocol))
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{pool}-0", "labels": {"app": pool}},
                "status": {"podIP": host, "conditions": [{"type": "Ready", "status": "True"}]},
            }
        )
    for pool, (hosts, ports, mode) in POOLS.items():
        docs.append(_pool(pool, [port + 2 * i for i in range(ports)], mode))
        for i, host in enumerate(hosts):
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": f"{pool}-{i}", "labels": {"app": pool}},
                    "status": {"podIP": host, "conditions": [{"type": "Ready", "status": "True"}]},
                }
            )
    for name, hostname, path, backends in ROUTES:
        refs = []
        for pool, weight, ref_port in backends:
            ref: dict[str, Any] = {
                "group": "inference.networking.k8s.io",
                "kind": "InferencePool",
                "name": pool,
            }
            ref["weight"] = weight
            if ref_port is not None:
                ref["port"] = ref_port
            refs.append(ref)
        docs.append(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": name},
                "spec": {
                    "parentRefs": [{"name": "gateway"}],
                    "hostnames": [hostname],
                    "rules": [
                        {"matches": [{"path": {"type": "PathPrefix", "value": path}}], "backendRefs": refs}
                    ],
                },
            }
        )
    return docs


class Fleet:
    """The simulated pods by address, and how many requests each one finished."""

    def __init__(self, loop: LoopThread, port: int) -> None:
        self.loop = loop
        self.servers: dict[str, SimulatedServer] = {}
        for hosts, ports, _ in POOLS.values():
            for host in hosts:
                for i in range(ports):
                    server = SimulatedServer(ServerConfig(served_model_name=MODEL, time_scale=0.01))
                    loop.run(server.start(host, port + 2 * i))
                    self.servers[f"{host}:{port + 2 * i}"] = server

        # The app-protocol pods: the simulator one port up, the sidecar on the pool's port.
        for host, _ in APP_PROTOCOL_POOLS.values():
            server = SimulatedServer(ServerConfig(served_model_name=MODEL, time_scale=0.01))
            loop.run(server.start(host, port + 1))
            self.servers[f"{host}:{port + 1}"] = server

    def finished(self) -> collections.Counter[str]:
        return collections.Counter({a: s.engine.stats.e2e.count for a, s in self.servers.items()})

    def stop(self) -> None:
        for server in self.servers.values():
            self.loop.run(server.stop())


@pytest.fixture(scope="module")
def conformance() -> Iterator[dict[str, Any]]:
    loop = LoopThread()
    work = Path(tempfile.mkdtemp(prefix="conformance-"))
    port = free_port("127.0.5.1")
    fleet = Fleet(loop, port)
    resources = work / "resources"
    resources.mkdir()
    (resources / "all.yaml").write_text(yaml.safe_dump_all(_manifests(port)))
    config = FIXTURES.parent.parent / "scheduling" / "upstream_configs" / "gie" / "resources-base.yaml"
    args = [
        "--resources",
        str(resources),
        "--config-file",
        str(config),
        "--refresh-metrics-interval",
        "500ms",
    ]
    try:
        with epp_process(
            [*args, "--metrics-endpoint-auth=false"], work / "kubeconfig", work / "epp.log"
        ) as epp:
            ref_text, ref_ports = reference_envoy("inference-conformance", epp["grpc"])
            ours = _own_envoy(resources, work / "own", epp["grpc"])
            (work / "ref").mkdir()
            (work / "sidecar").mkdir()
            sidecar_admin = free_port()
            with (
                envoy_process(_sidecar(port, sidecar_admin), work / "sidecar", sidecar_admin),
                envoy_process(ref_text, work / "ref", ref_ports["READY_PORT"]),
                envoy_process(ours["text"], work / "own", ours["ready"]),
            ):
                yield {
                    "fleet": fleet,
                    "reference": f"http://127.0.0.1:{ref_ports['LISTEN_PORT']}",
                    "own": f"http://127.0.0.1:{ours['listen']}",
                }
    finally:
        fleet.stop()
        loop.close()


def _sidecar(port: int, admin: int) -> str:
    """An Envoy in front of each app-protocol pod: HTTP/1.1 or cleartext HTTP/2 in (codec AUTO),
    the protocol it got in the response header x-served-protocol, HTTP/1.1 to the simulator."""
    listeners, clusters = [], []
    for i, (host, _) in enumerate(APP_PROTOCOL_POOLS.values()):
        listeners.append(
            {
                "name": f"pod{i}",
                "address": {"socket_address": {"address": host, "port_value": port}},
                "filter_chains": [{"filters": [_sidecar_hcm(f"sim{i}")]}],
            }
        )
        endpoint = {"address": {"socket_address": {"address": host, "port_value": port + 1}}}
        clusters.append(
            {
                "name": f"sim{i}",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {
                    "cluster_name": f"sim{i}",
                    "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}],
                },
            }
        )
    admin_address = {"socket_address": {"address": "127.0.0.1", "port_value": admin}}
    config = {
        "admin": {"address": admin_address},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }
    return yaml.safe_dump(config)


def _sidecar_hcm(cluster: str) -> dict[str, Any]:
    route = {"match": {"prefix": "/"}, "route": {"cluster": cluster}}
    protocol = {"header": {"key": SERVED_PROTOCOL, "value": "%PROTOCOL%"}}
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network."
            "http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": cluster,
            "codec_type": "AUTO",
            "route_config": {
                "virtual_hosts": [{"name": "pod", "domains": ["*"], "routes": [route]}],
                "response_headers_to_add": [protocol],
            },
            "http_filters": [
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                    },
                }
            ],
        },
    }


def _own_envoy(resources: Path, out: Path, epp_port: int) -> dict[str, Any]:
    listen, admin = free_port(), free_port()
    flags = EnvoySetupFlags(
        listen_port=listen, admin_port=admin, epp_port=epp_port, resources=resources, out=out
    )
    written = write_setup(build_setup(flags), out, load_path(resources))
    return {"text": written[0].read_text(), "listen": listen, "ready": admin}


GATEWAYS = ["reference", "own"]


def send(
    stack: dict[str, Any], gateway: str, host: str, select: str, n: int = 1, path: str = COMPLETIONS
) -> list[Reply]:
    """`n` requests through one gateway. The reference config has one route and one EPP for
    every pool (upstream deploys one EPP per pool), so its requests name the pool by header."""
    headers = {"host": host, SELECT: select}
    if gateway == "reference":
        headers["x-gateway-inference-pool"] = (
            "dp-inference-pool" if host.startswith("dp.") else "primary-inference-pool"
        )
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 2}
    if path == CHAT:
        body["messages"] = [{"role": "user", "content": "Write as if you were a critic: San Francisco"}]
    else:
        body["prompt"] = "Write as if you were a critic: San Francisco"
    data = json.dumps(body).encode()
    headers["content-type"] = "application/json"
    return [post(stack[gateway] + path, data, headers) for _ in range(n)]


@dataclass
class Reply:
    status_code: int
    headers: dict[str, str]
    text: str


def post(url: str, data: bytes, headers: dict[str, str]) -> Reply:
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode())
    except urllib.error.HTTPError as err:
        return Reply(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read().decode())


def served_by(stack: dict[str, Any], gateway: str, *args: Any, **kwargs: Any) -> set[str]:
    before = stack["fleet"].finished()
    responses = send(stack, gateway, *args, **kwargs)
    assert [r.status_code for r in responses] == [200] * len(responses), [r.text for r in responses]
    return set(stack["fleet"].finished() - before)


def everyone(*pools: str) -> str:
    return ",".join(h for pool in pools or POOLS for h in POOLS[pool][0])


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_gateway_following_epp_routing(conformance: dict[str, Any], gateway: str) -> None:
    hosts = POOLS["primary-inference-pool"][0]
    addresses = {h: next(a for a in conformance["fleet"].servers if a.startswith(h + ":")) for h in hosts}
    for host in hosts:  # each pod alone
        assert served_by(conformance, gateway, "primary.example.com", host) == {addresses[host]}
    for chosen in (hosts[:2], hosts):  # two pods, all pods: traffic never leaves the chosen ones
        got = served_by(conformance, gateway, "primary.example.com", ",".join(chosen), n=6)
        assert got <= {addresses[h] for h in chosen}


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_gateway_following_epp_routing_with_data_parallelism(
    conformance: dict[str, Any], gateway: str
) -> None:
    host = POOLS["dp-inference-pool"][0][1]
    ranks = sorted(a for a in conformance["fleet"].servers if a.startswith(host + ":"))
    got = served_by(conformance, gateway, "dp.example.com", host, n=4)
    assert got and got <= set(ranks)  # any rank of the designated pod
    assert served_by(conformance, gateway, "dp.example.com", ranks[2], n=3) == {ranks[2]}


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_destination_endpoint_served(conformance: dict[str, Any], gateway: str) -> None:
    for host in POOLS["primary-inference-pool"][0]:
        before = conformance["fleet"].finished()
        (response,) = send(conformance, gateway, "served.example.com", host)
        assert response.status_code == 200
        assert response.headers[SERVED].split(":")[0] == host
        assert set(conformance["fleet"].finished() - before) == {response.headers[SERVED]}


def test_multiple_rules_route_to_different_pools(conformance: dict[str, Any]) -> None:
    for path, pool in ((COMPLETIONS, "primary-inference-pool"), (CHAT, "secondary-inference-pool")):
        got = served_by(conformance, "own", "multi.example.com", everyone(), n=3, path=path)
        assert got and {a.split(":")[0] for a in got} <= set(POOLS[pool][0])


def test_second_gateway_hostname_routes_to_its_pool(conformance: dict[str, Any]) -> None:
    got = served_by(conformance, "own", "secondary.example.com", everyone(), n=3)
    assert got and {a.split(":")[0] for a in got} <= set(POOLS["secondary-inference-pool"][0])


@pytest.mark.parametrize("host", ["port-unspecified", "port-matching", "port-non-matching"])
def test_backend_ref_port_is_ignored_for_inference_pools(conformance: dict[str, Any], host: str) -> None:
    first = POOLS["primary-inference-pool"][0][0]
    assert len(served_by(conformance, "own", f"{host}.example.com", first)) == 1


def test_weighted_two_pools(conformance: dict[str, Any]) -> None:
    """70/30 between the two pools of one route; within each pool the EPP picks."""
    pools = ("primary-inference-pool", "secondary-inference-pool")
    got = send(conformance, "own", "weighted.example.com", everyone(*pools), n=100)
    assert all(r.status_code == 200 for r in got)
    primary_hosts = set(POOLS["primary-inference-pool"][0])
    to_primary = sum(r.headers[SERVED].split(":")[0] in primary_hosts for r in got)
    assert 55 <= to_primary <= 85, to_primary  # 70 expected; binomial sd ~4.6


def test_route_to_a_missing_pool_reaches_no_pod(conformance: dict[str, Any]) -> None:
    """HTTPRouteInvalidInferencePoolRef: the route's status (ResolvedRefs=False BackendNotFound)
    is the Gateway controller's; with our envoy-config such a route is answered by the EPP with
    an OpenAI-style 404 naming the pool, and never reaches a pod of another pool."""
    before = conformance["fleet"].finished()
    (response,) = send(conformance, "own", "invalid-ref.example.com", everyone())
    assert response.status_code == 404, response.text
    error = json.loads(response.text)["error"]
    assert error["code"] == "pool_not_found" and "non-existent-pool" in error["message"]
    assert conformance["fleet"].finished() == before


@pytest.mark.parametrize(
    ("pool", "protocol"), [("h2c-inference-pool", "HTTP/2"), ("http-inference-pool", "HTTP/1.1")]
)
def test_app_protocol_decides_how_the_gateway_speaks_to_the_pods(
    conformance: dict[str, Any], pool: str, protocol: str
) -> None:
    """InferencePoolAppProtocol: `kubernetes.io/h2c` gets cleartext HTTP/2, `http` HTTP/1.1."""
    host, app_protocol = APP_PROTOCOL_POOLS[pool]
    hostname = f"appprotocol-{'h2c' if app_protocol != 'http' else 'http'}.example.com"
    (response,) = send(conformance, "own", hostname, host)
    assert response.status_code == 200, response.text
    assert response.headers[SERVED_PROTOCOL] == protocol
    assert response.headers[SERVED].split(":")[0] == host
