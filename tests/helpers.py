"""Small builders shared by unit tests: a datastore with a pool and endpoints with set metrics."""

from __future__ import annotations

import time

from inference_gateway.api.manifests import parse_yaml
from inference_gateway.datastore.store import Datastore

POOL_YAML = """
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: pool}
spec:
  selector: {matchLabels: {app: sim}}
  targetPorts: [{number: 8000}]
  endpointPickerRef: {name: epp, port: {number: 9002}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: chat}
spec: {modelName: chat, poolRef: {name: pool}, criticality: Critical,
       targetModels: [{name: chat-v1, weight: 50}, {name: chat-v2, weight: 50}]}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: base}
spec: {modelName: base-model, poolRef: {name: pool}}
"""


def pod_yaml(i: int, ready: bool = True) -> str:
    status = "True" if ready else "False"
    return (
        f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: pod-{i}, labels: {{app: sim}}}}\n"
        f"status: {{podIP: 10.0.0.{i}, conditions: [{{type: Ready, status: '{status}'}}]}}\n"
    )


def make_store(pods: int = 3, extra_yaml: str = "") -> Datastore:
    store = Datastore()
    text = POOL_YAML + "".join(pod_yaml(i) for i in range(1, pods + 1)) + extra_yaml
    store.replace_all(parse_yaml(text, "test"))
    now = time.monotonic()
    for e in store.endpoints():
        e.metrics.updated_at = now
        e.metrics.served_models = frozenset({"base-model"})
    store.synced = True
    return store
