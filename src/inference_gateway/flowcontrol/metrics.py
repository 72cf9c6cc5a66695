"""Flow-control metrics (upstream names), registered on an injected CollectorRegistry.

With no registry the metrics are created unregistered: they still work, nobody scrapes them.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from inference_gateway.flowcontrol.types import FlowRequest, QueueOutcome

PREFIX = "inference_extension_flow_control_"
QUEUE_DURATION_BUCKETS = (
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
QUEUE_LABELS = ("fairness_id", "priority", "inference_pool")
MODEL_LABELS = ("model_name", "target_model_name")
# Upstream's outcome label while a request waits in its queue (processor.go's enqueue).
NOT_YET_FINALIZED = "NotYetFinalized"


class FlowControlMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.queue_size = Gauge(
            PREFIX + "queue_size",
            "Requests currently waiting in the EPP flow-control queues.",
            (*QUEUE_LABELS, *MODEL_LABELS),
            registry=registry,
        )
        self.queue_bytes = Gauge(
            PREFIX + "queue_bytes",
            "Bytes of request bodies currently waiting in the EPP flow-control queues.",
            (*QUEUE_LABELS, *MODEL_LABELS),
            registry=registry,
        )
        self.enqueue_duration = Histogram(
            PREFIX + "request_enqueue_duration_seconds",
            "Time to decide a request's entry into flow control (outcome NotYetFinalized: it queued).",
            ("fairness_id", "priority", "outcome"),
            buckets=QUEUE_DURATION_BUCKETS,
            registry=registry,
        )
        self.dispatch_cycle = Histogram(
            PREFIX + "dispatch_cycle_duration_seconds",
            "Time one dispatch cycle over a pool's queues takes.",
            buckets=QUEUE_DURATION_BUCKETS,
            registry=registry,
        )
        self.pool_saturation = Gauge(
            PREFIX + "pool_saturation",
            "The saturation detector's last reading for the pool (1 or more: saturated).",
            ("inference_pool",),
            registry=registry,
        )
        self.queue_duration = Histogram(
            PREFIX + "request_queue_duration_seconds",
            "Time from entering flow control to its outcome (0 when a request passes straight through).",
            (*QUEUE_LABELS, "outcome", "model_name", "target_model_name"),
            buckets=QUEUE_DURATION_BUCKETS,
            registry=registry,
        )
        self.dispatched = Counter(
            PREFIX + "dispatch",
            "Requests released to scheduling; queued=false for those that never waited.",
            (*QUEUE_LABELS, "queued"),
            registry=registry,
        )
        self.rejections = Counter(
            PREFIX + "rejections",
            "Requests flow control did not dispatch, by reason (capacity, sheddable, ttl_expired, "
            "cancelled, shutdown, other).",
            (*QUEUE_LABELS, "reason"),
            registry=registry,
        )

        # labels() costs more than the update itself; the hot path looks children up here.
        self._outcome_children: dict[tuple[str, int, str, str, str, QueueOutcome, bool], tuple[Any, Any]] = {}
        self._enqueue_children: dict[tuple[str, int, str], Any] = {}
        self._saturation_children: dict[str, Any] = {}

    def queued(self, request: FlowRequest, delta: int) -> None:
        labels = (request.flow_id, str(request.priority), request.pool, request.model, request.target_model)
        self.queue_size.labels(*labels).inc(delta)
        if request.byte_size:
            self.queue_bytes.labels(*labels).inc(delta * request.byte_size)

    def finished(self, request: FlowRequest, outcome: QueueOutcome, waited_s: float, queued: bool) -> None:
        key = (
            request.flow_id,
            request.priority,
            request.pool,
            request.model,
            request.target_model,
            outcome,
            queued,
        )
        children = self._outcome_children.get(key)
        if children is None:
            children = self._outcome_children[key] = self._children_for(request, outcome, queued)
        duration, count = children
        duration.observe(waited_s)
        count.inc()

    def _children_for(self, request: FlowRequest, outcome: QueueOutcome, queued: bool) -> tuple[Any, Any]:
        labels = (request.flow_id, str(request.priority), request.pool)
        duration = self.queue_duration.labels(*labels, outcome.value, request.model, request.target_model)
        if outcome is QueueOutcome.DISPATCHED:
            return duration, self.dispatched.labels(*labels, "true" if queued else "false")
        return duration, self.rejections.labels(*labels, outcome.reason)

    def entered(self, request: FlowRequest, outcome: QueueOutcome | None, seconds: float) -> None:
        """The admission decision: dispatched or rejected at once, or queued (outcome None)."""
        label = NOT_YET_FINALIZED if outcome is None else outcome.value
        key = (request.flow_id, request.priority, label)
        child = self._enqueue_children.get(key)
        if child is None:
            child = self._enqueue_children[key] = self.enqueue_duration.labels(key[0], str(key[1]), label)
        child.observe(seconds)

    def saturation(self, pool: str, saturated: bool) -> None:
        child = self._saturation_children.get(pool)
        if child is None:
            child = self._saturation_children[pool] = self.pool_saturation.labels(pool)
        child.set(1.0 if saturated else 0.0)
