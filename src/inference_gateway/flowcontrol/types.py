"""The vocabulary of flow control: flows, queued items, outcomes and the saturation signal."""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.saturation import SaturationSignal

DEFAULT_FLOW_ID = "default-flow"
FAIRNESS_HEADER = "x-gateway-inference-fairness-id"


class QueueOutcome(enum.Enum):
    """The one final state of a request in flow control (names as upstream's QueueOutcome)."""

    DISPATCHED = "Dispatched"
    REJECTED_CAPACITY = "RejectedCapacity"
    REJECTED_SHEDDABLE = "RejectedSheddable"
    REJECTED_OTHER = "RejectedOther"
    EVICTED_TTL = "EvictedTTL"
    EVICTED_CONTEXT_CANCELLED = "EvictedContextCancelled"
    EVICTED_OTHER = "EvictedOther"

    @property
    def reason(self) -> str:
        """Low-cardinality label for the rejections metric."""
        return _REASONS[self]


_REASONS = {
    QueueOutcome.DISPATCHED: "",
    QueueOutcome.REJECTED_CAPACITY: "capacity",
    QueueOutcome.REJECTED_SHEDDABLE: "sheddable",
    QueueOutcome.REJECTED_OTHER: "other",
    QueueOutcome.EVICTED_TTL: "ttl_expired",
    QueueOutcome.EVICTED_CONTEXT_CANCELLED: "cancelled",
    QueueOutcome.EVICTED_OTHER: "shutdown",
}


@dataclass(frozen=True, slots=True)
class FlowKey:
    """A flow is one tenant (fairness id) at one priority; each flow has its own queue."""

    flow_id: str
    priority: int


@dataclass(slots=True)
class FlowRequest:
    """What flow control needs to know about a request; the director builds it."""

    request_id: str
    priority: int = 0
    flow_id: str = DEFAULT_FLOW_ID
    byte_size: int = 0
    pool: str = ""
    model: str = ""
    target_model: str = ""
    ttl_s: float | None = None
    slo_ttft_s: float | None = None  # the client's TTFT objective (x-slo-ttft-ms), if it sent one

    @property
    def key(self) -> FlowKey:
        return FlowKey(self.flow_id, self.priority)

    @property
    def sheddable(self) -> bool:
        return self.priority < 0


_sequence = itertools.count()


@dataclass(eq=False, slots=True)
class QueueItem:
    """A request waiting in a flow queue. `outcome` is set exactly once (finalize)."""

    request: FlowRequest
    enqueued_at: float
    deadline: float | None
    future: asyncio.Future[None]
    seq: int = field(default_factory=lambda: next(_sequence))
    outcome: QueueOutcome | None = None

    def finalize(self, outcome: QueueOutcome) -> bool:
        """Record the outcome if none is recorded yet; False means someone else won the race."""
        if self.outcome is not None:
            return False
        self.outcome = outcome
        return True


class FlowControlRejected(Exception):
    """The request will not be dispatched; carries the HTTP answer the client should get."""

    def __init__(self, outcome: QueueOutcome, status: int, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s

    @property
    def code(self) -> str:
        return {
            QueueOutcome.REJECTED_CAPACITY: "queue_full",
            QueueOutcome.REJECTED_SHEDDABLE: "pool_saturated",
            QueueOutcome.EVICTED_TTL: "queue_timeout",
            QueueOutcome.EVICTED_OTHER: "shutting_down",
        }.get(self.outcome, "flow_control_rejected")

    @property
    def headers(self) -> dict[str, str]:
        return {"retry-after": str(self.retry_after_s)}


SaturationCheck = Callable[[list[Endpoint]], bool]
CandidateSource = Callable[[], Sequence[Endpoint]]


def saturation_check(detector: SaturationSignal | SaturationCheck) -> SaturationCheck:
    """Accept the pool's saturation detector (scheduling.saturation) or a plain function."""
    if isinstance(detector, SaturationSignal):
        return detector.is_saturated
    return detector
