"""Every manifest we ship validates; the chart renders what the controller needs.

The chart is rendered by helm_lite (helm is not installed in CI); when `helm` is on PATH it
is rendered by helm too and both outputs must agree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from inference_gateway.datastore.store import Datastore
from inference_gateway.scheduling.config import load_config
from inference_gateway.sources.kubernetes import KubernetesController
from tests.doubles.kube_apiserver import FakeKubeAPIServer, parse_path

from . import objects as o
from .conftest import eventually, options
from .helm_lite import render_chart
from .schemas import REPO, validate

CHART = REPO / "deploy" / "charts" / "inference-gateway"
EXAMPLES = REPO / "deploy" / "examples"
HA_MTLS = yaml.safe_load((EXAMPLES / "values-ha-mtls.yaml").read_text())
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "ha-mtls": HA_MTLS,
    "legacy-minimal": {
        "inferencePool": {"group": "inference.networking.x-k8s.io", "targetPorts": [8000]},
        "networkPolicy": {"enabled": False},
        "rbac": {"create": False},
        "serviceAccount": {"create": False, "name": "existing"},
        "tls": {"enabled": True, "secretName": "my-epp-cert", "clientAuth": False},
        "epp": {"leaderElection": {"enabled": True}, "followersServe": True},
    },
    "external-issuer": {
        "tls": {
            "enabled": True,
            "certManager": {"enabled": True, "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}},
        }
    },
}


def render(variant: str) -> list[dict[str, Any]]:
    return render_chart(CHART, VARIANTS[variant], release="llm", namespace=o.NS)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_chart_renders_valid_manifests(variant: str) -> None:
    docs = render(variant)
    assert docs
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), "duplicate objects"
    for doc in docs:
        validate(doc, f"chart[{variant}]")
        if doc["kind"] == "ConfigMap":
            load_config(doc["data"]["config.yaml"], source=f"chart[{variant}] ConfigMap")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_validate(path: Path) -> None:
    if path.name.startswith("values-"):
        render_chart(CHART, yaml.safe_load(path.read_text()))  # values files must render
        return
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        validate(doc, path.name)
        if doc["kind"] == "HTTPRoute":  # routes point at the InferencePool, as upstream expects
            refs = [r for rule in doc["spec"]["rules"] for r in rule["backendRefs"]]
            assert refs == [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "llm"}]


def test_validation_catches_mistakes() -> None:
    deployment = by_kind(render("defaults"), "Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["portz"] = []
    with pytest.raises(Exception, match="portz"):
        validate(deployment, "mutated")
    route = yaml.safe_load_all((EXAMPLES / "gateway-kgateway.yaml").read_text())
    http_route = next(d for d in route if d["kind"] == "HTTPRoute")
    http_route["spec"]["rules"][0]["backendRef"] = []
    with pytest.raises(Exception, match="backendRef"):
        validate(http_route, "mutated")
    pool = by_kind(render("defaults"), "InferencePool")[0]
    pool["spec"]["targetPorts"] = [{"number": 70000}]
    with pytest.raises(Exception, match="targetPorts"):
        validate(pool, "mutated")


def test_deployment_ports_probes_and_hardening() -> None:
    docs = render("ha-mtls")
    deployment = by_kind(docs, "Deployment")[0]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "grpc-ext-proc": 9002,
        "grpc-health": 9003,
        "http-metrics": 9090,
    }
    assert container["readinessProbe"]["grpc"] == {"port": 9003, "service": "readiness"}
    assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
    args = container["args"]
    assert "--pool-name=llm" in args and f"--pool-namespace={o.NS}" in args
    assert "--ha-enable-leader-election" in args and "--require-client-cert" in args
    assert deployment["spec"]["replicas"] == 3
    assert by_kind(docs, "PodDisruptionBudget")[0]["spec"]["minAvailable"] == 1
    service_ports = {p["name"]: p["port"] for p in by_kind(docs, "Service")[0]["spec"]["ports"]}
    assert service_ports == {"grpc-ext-proc": 9002, "grpc-health": 9003, "http-metrics": 9090}
    certs = {c["metadata"]["name"]: c["spec"] for c in by_kind(docs, "Certificate")}
    assert "llm-epp.inference.svc" in certs["llm-epp-server"]["dnsNames"]
    assert certs["llm-epp-server"]["secretName"] == pod["volumes"][-1]["secret"]["secretName"]
    assert "client auth" in certs["llm-epp-gateway-client"]["usages"]


def test_single_replica_has_no_pdb_and_no_leader_election() -> None:
    docs = render("defaults")
    assert by_kind(docs, "PodDisruptionBudget") == []
    assert (
        "--ha-enable-leader-election"
        not in by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    assert by_kind(docs, "Certificate") == []


def test_network_policy_admits_only_gateway_and_prometheus() -> None:
    policy = by_kind(render("ha-mtls"), "NetworkPolicy")[0]["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    rules = {tuple(p["port"] for p in rule["ports"]): rule["from"] for rule in policy["ingress"]}
    assert set(rules) == {(9002, 9003), (9090,)}
    assert rules[(9002, 9003)] == HA_MTLS["networkPolicy"]["gatewayPeers"]
    assert rules[(9090,)][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert all(peer.get("podSelector", {}).get("matchLabels") for rule in rules.values() for peer in rule)


def test_role_is_least_privilege() -> None:
    role = by_kind(render("defaults"), "Role")[0]
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"])
        if "patch" in rule["verbs"] or "update" in rule["verbs"]:
            assert all(r.endswith("/status") or r == "leases" for r in rule["resources"]), rule
    assert by_kind(render("defaults"), "ClusterRole") == []


def _allowed(rules: list[dict[str, Any]], group: str, resource: str, verb: str, name: str) -> bool:
    for rule in rules:
        names = rule.get("resourceNames")
        granted = group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
        if granted and (not names or name in names):
            return True
    return False


def _verb(method: str, query: str, name: str) -> str:
    if method == "GET":
        return "get" if name else ("watch" if "watch=true" in query else "list")
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]


async def test_role_covers_every_request_the_controller_makes(
    apiserver: FakeKubeAPIServer, api: k8s.ApiClient
) -> None:
    """Run the controller (leader, status, routes) and check each request against the Role."""
    rules = by_kind(render("defaults"), "Role")[0]["rules"]
    apiserver.apply(o.pool(epp="llm-epp"))
    apiserver.apply(o.service("llm-epp"))
    apiserver.apply(o.pod("a", "10.9.0.1"))
    apiserver.apply(o.model("chat", "llama"))
    apiserver.apply(o.route("r", "gw", accepted="True"))
    ctl = KubernetesController(Datastore(), options(lease_name=None), api)
    await ctl.start()
    try:
        await eventually(lambda: ctl.is_leader and ctl.status_writes >= 2, what="leader wrote statuses")
    finally:
        await ctl.stop()
    seen = set()
    for request in list(apiserver.requests):
        method, target = request.split(" ", 1)
        path, _, query = target.partition("?")
        group, _, _, plural, name, sub = parse_path(path)
        resource = f"{plural}/{sub}" if sub else plural
        verb = _verb(method, query, name)
        seen.add((group, resource, verb))
        assert _allowed(rules, group, resource, verb, name), f"Role forbids {verb} {group}/{resource} {name}"
    assert ("coordination.k8s.io", "leases", "update") in seen
    assert ("inference.networking.x-k8s.io", "inferencemodels/status", "patch") in seen
    assert ("", "pods", "watch") in seen


@pytest.mark.skipif(shutil.which("helm") is None, reason="helm not installed; helm_lite renders the chart")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_helm_agrees_with_helm_lite(variant: str, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(VARIANTS[variant]))
    out = subprocess.run(
        ["helm", "template", "llm", str(CHART), "-n", o.NS, "-f", str(values)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    helm_docs = sorted((d for d in yaml.safe_load_all(out) if d), key=key)
    assert helm_docs == sorted(render(variant), key=key)
