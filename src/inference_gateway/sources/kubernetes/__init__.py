"""Kubernetes mode: watch an InferencePool and its objects with the official client."""

from inference_gateway.sources.kubernetes.controller import (
    ControllerOptions,
    KubernetesController,
    run_controller,
)
from inference_gateway.sources.kubernetes.leader import LeaderElector, LeaseConfig
from inference_gateway.sources.kubernetes.reflector import Reflector, ReflectorTimings

__all__ = [
    "ControllerOptions",
    "KubernetesController",
    "LeaderElector",
    "LeaseConfig",
    "Reflector",
    "ReflectorTimings",
    "run_controller",
]
