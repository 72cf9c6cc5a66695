"""Gateway preemption (opt-in): a Critical request that would queue on a saturated pool ends
the youngest Sheddable request on the pod it was routed to.

Engines that schedule by priority (vLLM `--scheduling-policy priority` with the
engine-priority plugin) reorder their own queues; this is for engines that cannot. When a
Critical request is routed and its pod is saturated (queue or KV-cache use at the saturation
thresholds: it would wait behind the pod's queue), the youngest Sheddable request the EPP
routed to that pod and that is still in flight is ended: its ext_proc stream answers with
503 `{"error": {"code": "preempted", ...}}` and `Retry-After`, so Envoy ends the request and
the pod's connection closes, which makes the engine abort it and free its batch slot and KV
blocks. If the Sheddable response had already started streaming, Envoy can no longer send a
status and resets the stream instead; clients retry either way. Each preemption is logged
and counted (`inference_extension_preemptions_total{pool}`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter

from inference_gateway.api.types import Criticality
from inference_gateway.requestcontrol.errors import GatewayError
from inference_gateway.scheduling.params import get_int
from inference_gateway.scheduling.saturation import SaturationConfig, SaturationDetector

if TYPE_CHECKING:
    from inference_gateway.datastore.endpoint import Endpoint
    from inference_gateway.requestcontrol.director import RequestContext

log = logging.getLogger(__name__)

Abort = Callable[[GatewayError], None]
_THRESHOLDS = ("queueDepthThreshold", "kvCacheUtilThreshold")


@dataclass(slots=True)
class _InFlight:
    ctx: RequestContext
    abort: Abort


class SheddablePreemption:
    """The `sheddable-preemption` plugin: configuration, and the in-flight Sheddable streams."""

    type_name = "sheddable-preemption"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = dict(parameters or {})
        self.name = name
        self.retry_after_s = get_int(params, "retryAfterSeconds", 1, minimum=0)
        thresholds = {k: params.pop(k) for k in list(params) if k in _THRESHOLDS}
        params.pop("retryAfterSeconds", None)
        if params:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(params))}")
        self.detector = SaturationDetector(SaturationConfig.from_params(thresholds))
        self._by_endpoint: dict[str, dict[str, _InFlight]] = {}
        self.preemptions: Counter | None = None

    def register_metrics(self, registry: CollectorRegistry) -> None:
        self.preemptions = Counter(
            "inference_extension_preemptions",
            "Sheddable requests ended by the EPP to make room for a Critical request.",
            ["pool"],
            registry=registry,
        )

    # --- bookkeeping (the director calls these) -------------------------------
    def routed(self, ctx: RequestContext) -> None:
        if ctx.abort is None or ctx.picked is None or ctx.request is None or not ctx.request.sheddable:
            return
        self._by_endpoint.setdefault(ctx.picked.address, {})[ctx.request_id] = _InFlight(ctx, ctx.abort)

    def finished(self, ctx: RequestContext) -> None:
        if ctx.picked is None:
            return
        streams = self._by_endpoint.get(ctx.picked.address)
        if streams is not None and streams.pop(ctx.request_id, None) is not None and not streams:
            del self._by_endpoint[ctx.picked.address]

    # --- the decision ------------------------------------------------------------
    def make_room(
        self, ctx: RequestContext, pool: str, candidates: Iterable[Endpoint]
    ) -> RequestContext | None:
        """For a Critical request routed to a saturated pod of a saturated pool: end the youngest
        Sheddable request there. Returns the preempted request's context, if any."""
        request, endpoint = ctx.request, ctx.picked
        if request is None or endpoint is None or request.criticality != Criticality.CRITICAL:
            return None
        if self.detector.has_capacity(endpoint) or any(self.detector.has_capacity(e) for e in candidates):
            return None
        streams = self._by_endpoint.get(endpoint.address)
        if not streams:
            return None
        victim = max(streams.values(), key=lambda s: s.ctx.started)
        del streams[victim.ctx.request_id]
        log.info(
            "request %s (Sheddable) preempted on %s for Critical request %s",
            victim.ctx.request_id,
            endpoint.address,
            ctx.request_id,
        )
        if self.preemptions is not None:
            self.preemptions.labels(pool).inc()
        victim.abort(self.error())
        return victim.ctx

    def error(self) -> GatewayError:
        return GatewayError(
            503,
            "This Sheddable request was preempted by a higher-priority request. Retry later.",
            "preempted",
            {"retry-after": str(self.retry_after_s)},
        )
