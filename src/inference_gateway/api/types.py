"""Resource types of the Gateway API Inference Extension, as the gateway uses them.

These are the normalised, validated forms. `api.manifests` turns Kubernetes-style
objects (any supported apiVersion) into them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

POOL_GROUP = "inference.networking.k8s.io"
LEGACY_GROUP = "inference.networking.x-k8s.io"
POOL_V1 = f"{POOL_GROUP}/v1"
X_V1ALPHA2 = f"{LEGACY_GROUP}/v1alpha2"

# Key under which a rewrite rule with no `matches` (it matches every model) is indexed.
# Requests always name a model, so the empty string never collides with a real one.
MATCH_ANY_MODEL = ""


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

    @classmethod
    def from_priority(cls, priority: int) -> Criticality:
        """The band an InferenceObjective priority falls in: negative is sheddable."""
        if priority < 0:
            return cls.SHEDDABLE
        return cls.CRITICAL if priority > 0 else cls.STANDARD


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

    @property
    def is_set(self) -> bool:
        """endpointPickerRef is optional since v1.5; an unset one has no name."""
        return bool(self.name)


@dataclass(frozen=True, slots=True)
class InferencePool:
    ref: ObjectRef
    selector: dict[str, str]
    target_ports: tuple[int, ...]
    endpoint_picker: EndpointPickerRef
    app_protocol: AppProtocol = AppProtocol.HTTP
    generation: int = 1
    api_version: str = POOL_V1

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
    generation: int = 1


@dataclass(frozen=True, slots=True)
class InferenceObjective:
    """Newer API: a named priority, chosen per request by header."""

    ref: ObjectRef
    priority: int
    pool: ObjectRef
    created_at: float = 0.0
    generation: int = 1


@dataclass(frozen=True, slots=True)
class RewriteTarget:
    model_rewrite: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class RewriteRule:
    """Rewrite requests for any of `match_models` (every model when empty) to a weighted target."""

    match_models: tuple[str, ...]
    targets: tuple[RewriteTarget, ...]

    def matches(self, model: str) -> bool:
        return not self.match_models or model in self.match_models


@dataclass(frozen=True, slots=True)
class InferenceModelRewrite:
    ref: ObjectRef
    pool: ObjectRef
    rules: tuple[RewriteRule, ...]
    created_at: float = 0.0
    generation: int = 1

    def rule_for(self, model: str) -> RewriteRule | None:
        """Exact matches win over match-all rules; otherwise the first rule in list order."""
        exact = next((r for r in self.rules if model in r.match_models), None)
        return exact or next((r for r in self.rules if not r.match_models), None)


@dataclass(frozen=True, slots=True)
class Pod:
    """A model-server pod as the gateway sees it (from Kubernetes or a local fleet)."""

    ref: ObjectRef
    ip: str
    labels: dict[str, str] = field(default_factory=dict)
    ready: bool = True


# --- status -------------------------------------------------------------------------------------
class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(enum.StrEnum):
    ACCEPTED = "Accepted"
    RESOLVED_REFS = "ResolvedRefs"


class Reason(enum.StrEnum):
    ACCEPTED = "Accepted"
    PENDING = "Pending"
    RESOLVED_REFS = "ResolvedRefs"
    INVALID_EXTENSION_REF = "InvalidExtensionRef"
    MODEL_NAME_IN_USE = "ModelNameInUse"


@dataclass(frozen=True, slots=True)
class Condition:
    """A metav1.Condition."""

    type: str
    status: ConditionStatus
    reason: str
    message: str
    observed_generation: int = 0
    last_transition_time: str = "1970-01-01T00:00:00Z"

    def to_dict(self) -> dict[str, object]:
        return {
            "type": self.type,
            "status": self.status.value,
            "reason": self.reason,
            "message": self.message,
            "observedGeneration": self.observed_generation,
            "lastTransitionTime": self.last_transition_time,
        }


@dataclass(frozen=True, slots=True)
class ParentRef:
    """The Gateway (or other parent) a pool status entry is reported for."""

    name: str
    namespace: str = ""
    group: str = "gateway.networking.k8s.io"
    kind: str = "Gateway"

    def to_dict(self) -> dict[str, str]:
        out = {"group": self.group, "kind": self.kind, "name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        return out


@dataclass(frozen=True, slots=True)
class PoolParentStatus:
    """status.parents[] of an InferencePool."""

    parent: ParentRef
    conditions: tuple[Condition, ...]
    controller_name: str = ""

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "parentRef": self.parent.to_dict(),
            "conditions": [c.to_dict() for c in self.conditions],
        }
        if self.controller_name:
            out["controllerName"] = self.controller_name
        return out
