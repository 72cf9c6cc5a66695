"""A small fleet in YAML, loaded into a Datastore, for request-control tests."""

from __future__ import annotations

from inference_gateway.api.manifests import parse_yaml
from inference_gateway.datastore.store import Datastore

POOL_AND_PODS = """\
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: pool}
spec:
  selector: {matchLabels: {app: vllm}}
  targetPorts: [{number: 8000}]
  endpointPickerRef: {name: pool-epp, port: {number: 9002}}
---
apiVersion: v1
kind: Pod
metadata: {name: vllm-0, labels: {app: vllm}}
status: {podIP: 127.0.0.21, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: vllm-1, labels: {app: vllm}}
status: {podIP: 127.0.0.22, conditions: [{type: Ready, status: "True"}]}
"""

MODELS = """\
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: food-review}
spec:
  modelName: food-review
  criticality: Critical
  poolRef: {name: pool}
  targetModels:
  - {name: food-review-v1, weight: 70}
  - {name: food-review-v2, weight: 20}
  - {name: food-review-v3, weight: 10}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: summaries}
spec:
  modelName: summaries
  criticality: Sheddable
  poolRef: {name: pool}
  targetModels: [{name: summaries-a}, {name: summaries-b}]
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: {name: interactive}
spec: {priority: 10, poolRef: {name: pool}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: {name: batch}
spec: {priority: -1, poolRef: {name: pool}}
"""


def make_store(*texts: str) -> Datastore:
    store = Datastore()
    store.replace_all(parse_yaml("---\n".join((POOL_AND_PODS, *texts)), "fleet.yaml"))
    return store
