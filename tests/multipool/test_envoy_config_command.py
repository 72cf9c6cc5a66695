"""`inference-gateway envoy-config` flags change the bootstrap as their help says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from inference_gateway.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def bootstrap(*args: str) -> tuple[dict[str, Any], str]:
    result = CliRunner().invoke(app, ["envoy-config", *args])
    assert result.exit_code == 0, result.output
    text = result.stdout
    return yaml.safe_load(
        text[: text.index("Envoy admin:")] if "Envoy admin:" in text else text
    ), result.output


def filters(config: dict[str, Any]) -> list[dict[str, Any]]:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["http_filters"]


def test_listen_host_port_and_admin_port() -> None:
    config, out = bootstrap("--listen-host", "0.0.0.0", "--listen-port", "18081", "--admin-port", "19901")
    address = config["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert address == {"address": "0.0.0.0", "port_value": 18081}
    assert config["admin"]["address"]["socket_address"]["port_value"] == 19901
    assert "Envoy admin: 127.0.0.1:19901" in out


def test_round_robin_has_no_epp_on_the_path() -> None:
    with_epp, _ = bootstrap()
    baseline, _ = bootstrap("--round-robin")
    assert any("ext_proc" in f["typed_config"]["@type"] for f in filters(with_epp))
    assert not any("ext_proc" in f["typed_config"]["@type"] for f in filters(baseline))


def test_failure_mode_follows_the_pools_unless_overridden() -> None:
    resources = str(EXAMPLES / "resources" / "pool.yaml")
    default, _ = bootstrap("--resources", resources)
    opened, _ = bootstrap("--resources", resources, "--fail-open")
    assert "failureMode: FailClose" in Path(resources).read_text()
    assert filters(default)[0]["typed_config"]["failure_mode_allow"] is False
    assert filters(opened)[0]["typed_config"]["failure_mode_allow"] is True


def test_epp_address_and_tls_files(tmp_path: Path) -> None:
    files = {name: tmp_path / name for name in ("ca.pem", "c.pem", "c.key")}
    args = ["--epp-host", "10.1.2.3", "--epp-port", "19002", "--tls-sni", "epp.example"]
    args += [
        "--tls-ca",
        str(files["ca.pem"]),
        "--tls-cert",
        str(files["c.pem"]),
        "--tls-key",
        str(files["c.key"]),
    ]
    config, _ = bootstrap(*args)
    epp = next(c for c in config["static_resources"]["clusters"] if c["name"] == "epp")
    socket = epp["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"
    ]
    assert socket == {"address": "10.1.2.3", "port_value": 19002}
    tls = epp["transport_socket"]["typed_config"]
    assert tls["sni"] == "epp.example"
    assert tls["common_tls_context"]["validation_context"]["trusted_ca"]["filename"] == str(files["ca.pem"])
    result = CliRunner().invoke(app, ["envoy-config", "--tls-ca", str(files["ca.pem"])])
    assert result.exit_code != 0


def test_eds_path_is_where_the_printed_bootstrap_reads_endpoints() -> None:
    config, _ = bootstrap("--eds-path", "/srv/envoy/endpoints.yaml")
    pool = next(c for c in config["static_resources"]["clusters"] if c["name"] != "epp")
    source = pool["eds_cluster_config"]["eds_config"]["path_config_source"]
    assert source["path"] == "/srv/envoy/endpoints.yaml"


def _pool_doc(name: str, app_protocol: str) -> dict[str, Any]:
    return {
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "targetPorts": [{"number": 8000}],
            "appProtocol": app_protocol,
            "endpointPickerRef": {"name": "epp", "port": {"number": 9002}},
        },
    }


def test_h2c_pools_get_cleartext_http2_to_their_pods(tmp_path: Path) -> None:
    (tmp_path / "pools.yaml").write_text(yaml.safe_dump(_pool_doc("fast", "kubernetes.io/h2c")))
    config, _ = bootstrap("--resources", str(tmp_path))
    (pool_cluster,) = [c for c in config["static_resources"]["clusters"] if c["type"] == "EDS"]
    options = pool_cluster["typed_extension_protocol_options"]
    assert options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicit_http_config"] == {
        "http2_protocol_options": {}
    }
    # A shared cluster cannot speak both: HTTP/1.1, and a note says how to split them.
    docs = [_pool_doc("fast", "kubernetes.io/h2c"), _pool_doc("plain", "http")]
    (tmp_path / "pools.yaml").write_text(yaml.safe_dump_all(docs))
    config, out = bootstrap("--resources", str(tmp_path))
    (pool_cluster,) = [c for c in config["static_resources"]["clusters"] if c["type"] == "EDS"]
    assert "typed_extension_protocol_options" not in pool_cluster
    assert "appProtocol kubernetes.io/h2c" in out


def _hcm(config: dict[str, Any]) -> dict[str, Any]:
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def test_response_phases_pick_how_responses_reach_the_epp() -> None:
    default, _ = bootstrap()
    names = [f["name"] for f in filters(default)]
    assert "envoy.filters.http.lua/usage" in names and "envoy.filters.http.ext_proc/observe" not in names
    (als,) = [a for a in _hcm(default)["access_log"] if a["name"] == "envoy.access_loggers.http_grpc"]
    assert als["typed_config"]["common_config"]["buffer_flush_interval"] == "0.010s"
    slower, _ = bootstrap("--access-log-flush-ms", "25")
    (als,) = [a for a in _hcm(slower)["access_log"] if a["name"] == "envoy.access_loggers.http_grpc"]
    assert als["typed_config"]["common_config"]["buffer_flush_interval"] == "0.025s"
    observed, _ = bootstrap("--response-phases", "observe")
    names = [f["name"] for f in filters(observed)]
    assert "envoy.filters.http.ext_proc/observe" in names and "envoy.filters.http.lua/usage" not in names
    assert [a["name"] for a in _hcm(observed)["access_log"]] == ["envoy.access_loggers.stdout"]
    sent, _ = bootstrap("--response-phases", "send")
    (routing,) = [f for f in filters(sent) if f["name"] != "envoy.filters.http.router"]
    assert routing["typed_config"]["processing_mode"]["response_body_mode"] == "STREAMED"
    result = CliRunner().invoke(app, ["envoy-config", "--response-phases", "later"])
    assert result.exit_code != 0 and "later" in result.output
