"""Envoy clusters of the gateway: the EPP's gRPC cluster and the pools' EDS clusters, which route
with the override_host load-balancing policy (the EPP's ordered endpoint list, then round robin),
plus the EDS resource the gateway rewrites as pods come and go."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from inference_gateway.envoy.bootstrap import EnvoyConfig

# The EPP's primary endpoint header; its full ordered list travels in `envoy.lb` metadata under
# the same key.
DESTINATION_HEADER = "x-gateway-destination-endpoint"
POOL_CLUSTER = "inference-pool"
EPP_CLUSTER = "epp"

# Envoy's defaults (1024 requests, 3 concurrent retries) would throttle a busy LLM pool: streams are
# long-lived, and a dead pod makes every in-flight request retry at once.
CIRCUIT_BREAKERS = {
    "thresholds": [
        {
            "priority": "DEFAULT",
            "max_connections": 100000,
            "max_pending_requests": 100000,
            "max_requests": 100000,
            "max_retries": 100000,
        }
    ]
}


def epp_cluster(cfg: EnvoyConfig) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": EPP_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        # Every in-flight request holds an ext_proc stream open until its response ends (the
        # observer's, or the routing stream with the response phases on it): with Envoy's default
        # of 1024 requests per cluster the 1025th concurrent request got a 503 (upstream's
        # reference config sets 40000; tests/e2e/test_many_in_flight.py).
        "circuit_breakers": CIRCUIT_BREAKERS,
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": EPP_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": cfg.epp_host, "port_value": cfg.epp_port}
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    if not cfg.epp_tls and cfg.epp_tls_unverified:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "common_tls_context": {"alpn_protocols": ["h2"], "validation_context": {}},
            },
        }
    if cfg.epp_tls:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": cfg.epp_tls.get("sni", "localhost"),
                "common_tls_context": {
                    "alpn_protocols": ["h2"],
                    "tls_certificates": [
                        {
                            "certificate_chain": {"filename": cfg.epp_tls["cert"]},
                            "private_key": {"filename": cfg.epp_tls["key"]},
                        }
                    ],
                    "validation_context": {"trusted_ca": {"filename": cfg.epp_tls["ca"]}},
                },
            },
        }
    return cluster


# appProtocol kubernetes.io/h2c: HTTP/2 with prior knowledge to the pods, as upstream's
# gateways do for such a pool (conformance InferencePoolAppProtocol).
H2C_PROTOCOL_OPTIONS = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }
}


def _pool_cluster(name: str, eds_path: str, h2c: bool = False) -> dict[str, Any]:
    protocol = {"typed_extension_protocol_options": H2C_PROTOCOL_OPTIONS} if h2c else {}
    return {
        **protocol,
        "name": name,
        "type": "EDS",
        "connect_timeout": "1s",
        "circuit_breakers": CIRCUIT_BREAKERS,
        "eds_cluster_config": {
            "eds_config": {"path_config_source": {"path": eds_path}, "resource_api_version": "V3"}
        },
        "load_balancing_policy": {
            "policies": [
                {
                    "typed_extension_config": {
                        "name": "envoy.load_balancing_policies.override_host",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost",
                            "override_host_sources": [
                                # The metadata holds the ordered list (primary, fallbacks);
                                # the header only the primary, as upstream's protocol.
                                {"metadata": {"key": "envoy.lb", "path": [{"key": DESTINATION_HEADER}]}},
                                {"header": DESTINATION_HEADER},
                            ],
                            "fallback_policy": {
                                "policies": [
                                    {
                                        "typed_extension_config": {
                                            "name": "envoy.load_balancing_policies.round_robin",
                                            "typed_config": {
                                                "@type": "type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin"
                                            },
                                        }
                                    }
                                ]
                            },
                        },
                    }
                }
            ]
        },
    }


def pool_clusters(cfg: EnvoyConfig) -> list[dict[str, Any]]:
    if not cfg.pools:
        return [_pool_cluster(POOL_CLUSTER, cfg.eds_path, cfg.h2c)]
    return [_pool_cluster(p.cluster, p.eds_path, p.h2c) for p in cfg.pools]


def eds_resource(addresses: Iterable[str], cluster: str = POOL_CLUSTER) -> dict[str, Any]:
    endpoints = []
    for address in sorted(set(addresses)):
        host, _, port = address.rpartition(":")
        endpoints.append(
            {"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}
        )
    return {
        "version_info": str(hash(tuple(sorted(set(addresses)))) & 0xFFFFFFFF),
        "resources": [
            {
                "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
                "cluster_name": cluster,
                "endpoints": [{"lb_endpoints": endpoints}],
            }
        ],
    }


def write_atomically(path: str | Path, data: dict[str, Any]) -> None:
    """Envoy watches path_config_source files for a move, so replace them with a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    os.replace(tmp, path)
