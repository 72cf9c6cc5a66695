"""Tracing spans and Prometheus metrics, observed through the director's request path."""

from __future__ import annotations

import orjson
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from inference_gateway.observability.metrics import EPPMetrics
from inference_gateway.observability.tracing import RequestTracer, make_provider
from inference_gateway.requestcontrol.director import Director
from inference_gateway.requestcontrol.errors import GatewayError
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from tests.helpers import make_store

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def director_with_observers() -> tuple[Director, InMemorySpanExporter, EPPMetrics]:
    store = make_store()
    director = Director(store, PoolRuntime(load_config(), flow_control=False))
    exporter = InMemorySpanExporter()
    provider = make_provider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    metrics = EPPMetrics(store)
    director.observers += [metrics, RequestTracer(provider)]
    return director, exporter, metrics


async def test_span_continues_client_trace_and_propagates_upstream() -> None:
    director, exporter, _ = director_with_observers()
    ctx = director.new_context({"traceparent": PARENT})
    decision = await director.route(ctx, orjson.dumps({"model": "chat", "prompt": "hi"}))
    upstream = decision.headers["traceparent"]
    assert upstream.split("-")[1] == TRACE_ID
    assert upstream != PARENT  # a new span id: ours
    director.on_response_headers(ctx, 200, decision.destination.split(",")[0])
    director.on_complete(ctx)
    (span,) = exporter.get_finished_spans()
    assert span.name == "gateway.request"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert span.attributes["gateway.endpoint"] == decision.destination.split(",")[0]
    assert span.attributes["gateway.target_model"] in {"chat-v1", "chat-v2"}
    assert span.attributes["gateway.criticality"] == "Critical"


async def test_rejected_request_is_an_error_span_and_counted() -> None:
    director, exporter, metrics = director_with_observers()
    ctx = director.new_context({})
    try:
        await director.route(ctx, b'{"model": 7}')
    except GatewayError as err:
        assert err.status == 400
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["http.response.status_code"] == 400
    text = generate_latest(metrics.registry).decode()
    # Upstream's error_code values (pkg/common/error), so its dashboards and alerts match.
    assert 'inference_objective_request_error_total{error_code="BadRequest"' in text


async def test_metrics_use_upstream_names_and_track_requests() -> None:
    director, _, metrics = director_with_observers()
    contexts = []
    for _ in range(3):
        ctx = director.new_context({})
        await director.route(ctx, orjson.dumps({"model": "base-model", "prompt": "x"}))
        contexts.append(ctx)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}
    for name in (
        "inference_objective_request",
        "inference_objective_running_requests",
        "inference_pool_average_kv_cache_utilization",
        "inference_pool_average_queue_size",
        "inference_pool_ready_pods",
        "inference_extension_scheduler_e2e_duration_seconds",
        "inference_objective_request_duration_seconds",
        "inference_pool_per_pod_queue_size",
    ):
        assert name in families, name
    running = {
        s.labels["model_name"]: s.value for s in families["inference_objective_running_requests"].samples
    }
    assert running["base-model"] == 3
    ready = [s.value for s in families["inference_pool_ready_pods"].samples]
    assert ready == [3]
    for ctx in contexts:
        ctx.completion_tokens, ctx.prompt_tokens = 10, 5
        director.on_complete(ctx)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}
    running = {
        s.labels["model_name"]: s.value for s in families["inference_objective_running_requests"].samples
    }
    assert running["base-model"] == 0
    counts = [
        s.value for s in families["inference_objective_output_tokens"].samples if s.name.endswith("_count")
    ]
    assert counts == [3]


async def test_upstream_v15_families_priority_attempts_ttft_tpot_and_prefix_hits() -> None:
    store = make_store()
    config = load_config()
    director = Director(store, PoolRuntime(config, flow_control=False))
    metrics = EPPMetrics(store, plugins=config.plugins.values())
    director.observers.append(metrics)
    prompt = "a shared system prompt " * 20
    contexts = []
    for _ in range(2):
        ctx = director.new_context({})
        await director.route(ctx, orjson.dumps({"model": "base-model", "prompt": prompt}))
        ctx.first_byte_at = ctx.started + 0.2
        ctx.completion_tokens = 11
        director.on_complete(ctx)
        contexts.append(ctx)
    r = metrics.registry
    assert (
        r.get_sample_value(
            "inference_objective_request_total",
            {"model_name": "base-model", "target_model_name": "base-model", "priority": "0"},
        )
        == 2
    )
    picked = contexts[0].picked
    assert picked is not None
    attempt = {
        "status": "success",
        "target_model_name": "base-model",
        "pod_name": picked.pod.name,
        "namespace": picked.pod.namespace,
        "port": str(picked.port),
    }
    assert (r.get_sample_value("inference_extension_scheduler_attempts_total", attempt) or 0) >= 1
    model = {"model_name": "base-model", "target_model_name": "base-model"}
    assert r.get_sample_value("inference_objective_request_ttft_seconds_count", model) == 2
    assert r.get_sample_value("inference_objective_request_tpot_seconds_count", model) == 2
    # The second request found the first one's prefix on the endpoint it went to.
    assert r.get_sample_value("inference_extension_prefix_indexer_hit_ratio_count", {}) == 2
    assert r.get_sample_value("inference_extension_prefix_indexer_hit_ratio_sum", {}) >= 0.9
    assert (r.get_sample_value("inference_extension_prefix_indexer_size", {}) or 0) > 0
    assert r.get_sample_value("inference_pool_average_running_requests", {"name": "pool"}) is not None
