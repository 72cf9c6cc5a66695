"""The official Kubernetes client, configured, plus the resources the controller watches."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

INFERENCE_GROUP = "inference.networking.k8s.io"
INFERENCE_X_GROUP = "inference.networking.x-k8s.io"
GATEWAY_GROUP = "gateway.networking.k8s.io"


@dataclass(frozen=True, slots=True)
class CustomResource:
    group: str
    version: str
    plural: str
    kind: str


POOL_V1 = CustomResource(INFERENCE_GROUP, "v1", "inferencepools", "InferencePool")
POOL_V1ALPHA2 = CustomResource(INFERENCE_X_GROUP, "v1alpha2", "inferencepools", "InferencePool")
MODEL = CustomResource(INFERENCE_X_GROUP, "v1alpha2", "inferencemodels", "InferenceModel")
OBJECTIVE = CustomResource(INFERENCE_X_GROUP, "v1alpha2", "inferenceobjectives", "InferenceObjective")
REWRITE = CustomResource(INFERENCE_X_GROUP, "v1alpha2", "inferencemodelrewrites", "InferenceModelRewrite")
HTTPROUTE = CustomResource(GATEWAY_GROUP, "v1", "httproutes", "HTTPRoute")


def pool_resource(group: str) -> CustomResource:
    """`--pool-group`: the GA group (v1) or the legacy experimental one (v1alpha2)."""
    if group == INFERENCE_GROUP:
        return POOL_V1
    if group == INFERENCE_X_GROUP:
        return POOL_V1ALPHA2
    raise ValueError(f"unknown InferencePool group {group!r} (want {INFERENCE_GROUP} or {INFERENCE_X_GROUP})")


def load_api_client(kube_config: str | None = None, context: str | None = None) -> k8s.ApiClient:
    """A client from `kube_config` if given; else in-cluster; else the default kubeconfig."""
    configuration = k8s.Configuration()
    if kube_config:
        k8s_config.load_kube_config(
            config_file=kube_config, context=context, client_configuration=configuration
        )
    else:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(context=context, client_configuration=configuration)
    # One connection per open watch plus status/lease calls; keep them all pooled.
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, 16)
    return k8s.ApiClient(configuration)


Lister = Callable[..., Any]


def custom_lister(api: k8s.ApiClient, res: CustomResource, namespace: str, **selectors: str) -> Lister:
    """A list/watch call for a namespaced custom resource (what `Watch.stream` drives)."""
    custom: Any = k8s.CustomObjectsApi(api)
    return functools.partial(
        custom.list_namespaced_custom_object, res.group, res.version, namespace, res.plural, **selectors
    )


def pod_lister(api: k8s.ApiClient, namespace: str, label_selector: str) -> Lister:
    core: Any = k8s.CoreV1Api(api)
    return functools.partial(core.list_namespaced_pod, namespace, label_selector=label_selector)


def label_selector(match_labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))
