"""OpenTelemetry tracing: one `gateway.request` span per request, propagated to the model server.

The span continues the client's `traceparent` when Envoy forwards one, and the gateway sets a new
`traceparent` on the upstream request so the model server's spans join the same trace.
"""

from __future__ import annotations

import time

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from inference_gateway.requestcontrol.director import RequestContext
from inference_gateway.requestcontrol.errors import GatewayError

_PROPAGATOR = TraceContextTextMapPropagator()


def make_provider(
    exporter: SpanExporter | None = None, service_name: str = "inference-gateway-epp"
) -> TracerProvider:
    from opentelemetry.sdk.resources import Resource

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def otlp_exporter(endpoint: str) -> SpanExporter:
    """The OTLP exporter is an optional dependency (opentelemetry-exporter-otlp)."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
        OTLPSpanExporter,
    )

    return OTLPSpanExporter(endpoint=endpoint)  # type: ignore[no-any-return]


class RequestTracer:
    """A director observer that records each request as a span."""

    def __init__(self, provider: TracerProvider) -> None:
        self.tracer = provider.get_tracer("inference_gateway")
        self._spans: dict[str, Span] = {}

    def _start(self, ctx: RequestContext) -> Span:
        span = self._spans.get(ctx.request_id)
        if span is None:
            parent = _PROPAGATOR.extract(ctx.headers)
            start_ns = time.time_ns() - int((time.monotonic() - ctx.started) * 1e9)
            span = self.tracer.start_span(
                "gateway.request", context=parent, start_time=start_ns, kind=trace.SpanKind.SERVER
            )
            span.set_attribute("gateway.request_id", ctx.request_id)
            self._spans[ctx.request_id] = span
        return span

    def on_routed(self, ctx: RequestContext) -> None:
        span = self._start(ctx)
        res = ctx.resolution
        if res is not None:
            span.set_attribute("gen_ai.request.model", res.model)
            span.set_attribute("gateway.target_model", res.target_model)
            span.set_attribute("gateway.criticality", res.criticality.label)
            span.set_attribute("gateway.objective", res.objective)
            span.set_attribute("gateway.pool", str(res.view.pool.ref))
        if ctx.picked is not None:
            span.set_attribute("gateway.endpoint", ctx.picked.address)
            span.set_attribute("gateway.fallbacks", [e.address for e in ctx.endpoints[1:]])
        span.set_attribute("gateway.scheduling_ms", ctx.scheduling_seconds * 1000)
        span.set_attribute("gateway.queue_ms", ctx.queue_seconds * 1000)
        if ctx.explanation:
            span.set_attribute("gateway.decision", ctx.explanation)
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        ctx.upstream_headers.update(carrier)

    def on_error(self, ctx: RequestContext, error: GatewayError) -> None:
        span = self._start(ctx)
        span.set_attribute("http.response.status_code", error.status)
        span.set_status(Status(StatusCode.ERROR, error.message))
        self._finish(ctx)

    def on_complete(self, ctx: RequestContext) -> None:
        span = self._spans.get(ctx.request_id)
        if span is None:
            return
        if ctx.response_status:
            span.set_attribute("http.response.status_code", ctx.response_status)
        if ctx.served is not None:
            span.set_attribute("gateway.served_endpoint", ctx.served.address)
        if ctx.completion_tokens:
            span.set_attribute("gen_ai.usage.output_tokens", ctx.completion_tokens)
            span.set_attribute("gen_ai.usage.input_tokens", ctx.prompt_tokens)
        if ctx.response_status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        self._finish(ctx)

    def _finish(self, ctx: RequestContext) -> None:
        span = self._spans.pop(ctx.request_id, None)
        if span is not None:
            # The response's end as timed (Envoy's, with the access log), not when the EPP heard of it.
            late_s = time.monotonic() - ctx.ended_at if ctx.ended_at else 0.0
            span.end(end_time=time.time_ns() - int(max(0.0, late_s) * 1e9))
