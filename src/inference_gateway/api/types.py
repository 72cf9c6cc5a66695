"""Resource types of the Gateway API Inference Extension, as the gateway uses them.

These are the normalised, validated forms. `api.manifests` turns Kubernetes-style
objects (any supported apiVersion) into them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

POOL_GROUP = "inference.networking.k8s.io"
LEGACY_GROUP = "inference.networking.x-k8s.io"


class Criticality(enum.IntEnum):
    """Request criticality; the integer is the flow-control priority it maps to."""

    SHEDDABLE = -1
    STANDARD = 0
    CRITICAL = 1

    @classmethod
    def parse(cls, value: str | None) -> Criticality:
        if value is None or value == "":
            return cls.STANDARD
        for member in cls:
            if member.label == value:
                return member
        raise ValueError(f"unknown criticality {value!r} (want Critical, Standard or Sheddable)")

    @property
    def label(self) -> str:
        return self.name.capitalize()


class FailureMode(enum.StrEnum):
    FAIL_OPEN = "FailOpen"
    FAIL_CLOSE = "FailClose"


class AppProtocol(enum.StrEnum):
    HTTP = "http"
    H2C = "kubernetes.io/h2c"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class EndpointPickerRef:
    name: str
    port: int = 9002
    group: str = ""
    kind: str = "Service"
    failure_mode: FailureMode = FailureMode.FAIL_CLOSE


@dataclass(frozen=True, slots=True)
class InferencePool:
    ref: ObjectRef
    selector: dict[str, str]
    target_ports: tuple[int, ...]
    endpoint_picker: EndpointPickerRef
    app_protocol: AppProtocol = AppProtocol.HTTP
    generation: int = 1

    def selects(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.selector.items())


@dataclass(frozen=True, slots=True)
class TargetModel:
    name: str
    weight: int | None = None


@dataclass(frozen=True, slots=True)
class InferenceModel:
    """A public model name served by a pool, with criticality and weighted targets."""

    ref: ObjectRef
    model_name: str
    pool: ObjectRef
    criticality: Criticality = Criticality.STANDARD
    target_models: tuple[TargetModel, ...] = ()
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class InferenceObjective:
    """Newer API: a named priority, chosen per request by header."""

    ref: ObjectRef
    priority: int
    pool: ObjectRef
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class RewriteTarget:
    model_rewrite: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class RewriteRule:
    match_models: tuple[str, ...]
    targets: tuple[RewriteTarget, ...]


@dataclass(frozen=True, slots=True)
class InferenceModelRewrite:
    ref: ObjectRef
    pool: ObjectRef
    rules: tuple[RewriteRule, ...]
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Pod:
    """A model-server pod as the gateway sees it (from Kubernetes or a local fleet)."""

    ref: ObjectRef
    ip: str
    labels: dict[str, str] = field(default_factory=dict)
    ready: bool = True
