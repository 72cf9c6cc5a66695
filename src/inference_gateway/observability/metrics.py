"""The EPP's Prometheus metrics, with upstream's names and labels, on an injected registry."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from inference_gateway import __version__
from inference_gateway.datastore.store import Datastore
from inference_gateway.observability.prediction_metrics import PredictionMetrics
from inference_gateway.requestcontrol.director import RequestContext
from inference_gateway.requestcontrol.errors import GatewayError
from inference_gateway.scheduling.interfaces import Plugin, SharedPrefixIndex
from inference_gateway.scheduling.latency_predictions import ReportsPredictions

LATENCY_BUCKETS = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30,
    45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600,
)  # fmt: skip
NTPOT_BUCKETS = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6,
    0.8, 1, 1.5, 2, 3, 4.5, 6, 12, 18, 24, 30, 36, 48, 60, 120, 180, 240, 300,
)  # fmt: skip
SIZE_BUCKETS = tuple(float(4**i) for i in range(3, 14))
TOKEN_BUCKETS = tuple(float(2**i) for i in range(0, 17))
SCHED_BUCKETS = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
TPOT_BUCKETS = (0.0005, 0.00205, *NTPOT_BUCKETS[2:])
RATIO_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
HIT_BYTES_BUCKETS = (0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)

OBJECTIVE = ("model_name", "target_model_name")
ENDPOINT = ("pod_name", "namespace", "port")


class EPPMetrics:
    """Request-path metrics; the pool gauges are computed from the datastore at scrape time."""

    def __init__(
        self, store: Datastore, registry: CollectorRegistry | None = None, plugins: Iterable[object] = ()
    ) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "inference_objective_request_total",
            "Counter of inference objective requests broken out for each model and target model.",
            (*OBJECTIVE, "priority"),
            registry=r,
        )
        self.ttft = Histogram(
            "inference_objective_request_ttft_seconds",
            "Inference objective time to first token distribution in seconds.",
            OBJECTIVE,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "inference_objective_request_tpot_seconds",
            "Inference objective time per output token (after the first) distribution in seconds.",
            OBJECTIVE,
            buckets=TPOT_BUCKETS,
            registry=r,
        )
        self.cached_tokens = Histogram(
            "inference_objective_prompt_cached_tokens",
            "Inference objective prompt cached token count distribution.",
            OBJECTIVE,
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.attempts = Counter(
            "inference_extension_scheduler_attempts",
            "Scheduling attempts by status (success, failure) and the endpoint picked.",
            ("status", "target_model_name", *ENDPOINT),
            registry=r,
        )
        self.rewrites = Counter(
            "inference_extension_model_rewrite_decisions",
            "Requests an InferenceModelRewrite sent to another model.",
            ("model_rewrite_name", "model_name", "target_model"),
            registry=r,
        )
        self.prefix_hit_ratio = Histogram(
            "inference_extension_prefix_indexer_hit_ratio",
            "Share of a request's prompt found cached on the endpoint it was sent to (0-1).",
            buckets=RATIO_BUCKETS,
            registry=r,
        )
        self.prefix_hit_bytes = Histogram(
            "inference_extension_prefix_indexer_hit_bytes",
            "Length of the prompt prefix found cached on the endpoint it was sent to, in characters.",
            buckets=HIT_BYTES_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "inference_objective_request_error_total",
            "Counter of inference objective requests errors broken out for each model and target model.",
            (*OBJECTIVE, "error_code"),
            registry=r,
        )
        self.duration = Histogram(
            "inference_objective_request_duration_seconds",
            "Inference objective response latency distribution in seconds.",
            OBJECTIVE,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.request_sizes = Histogram(
            "inference_objective_request_sizes",
            "Inference objective requests size distribution in bytes.",
            OBJECTIVE,
            buckets=SIZE_BUCKETS,
            registry=r,
        )
        self.response_sizes = Histogram(
            "inference_objective_response_sizes",
            "Inference objective responses size distribution in bytes.",
            OBJECTIVE,
            buckets=SIZE_BUCKETS,
            registry=r,
        )
        self.input_tokens = Histogram(
            "inference_objective_input_tokens",
            "Inference objective input token count distribution.",
            OBJECTIVE,
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.output_tokens = Histogram(
            "inference_objective_output_tokens",
            "Inference objective output token count distribution.",
            OBJECTIVE,
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.ntpot = Histogram(
            "inference_objective_normalized_time_per_output_token_seconds",
            "Inference objective latency divided by number of output tokens.",
            OBJECTIVE,
            buckets=NTPOT_BUCKETS,
            registry=r,
        )
        self.running = Gauge(
            "inference_objective_running_requests",
            "Inference objective number of running requests in each model.",
            ("model_name",),
            registry=r,
        )
        self.scheduler_duration = Histogram(
            "inference_extension_scheduler_e2e_duration_seconds",
            "End-to-end scheduling latency distribution in seconds.",
            buckets=SCHED_BUCKETS,
            registry=r,
        )
        self.plugin_duration = Histogram(
            "inference_extension_plugin_duration_seconds",
            "Plugin processing latency distribution in seconds.",
            ("extension_point", "plugin_type", "plugin_name"),
            buckets=SCHED_BUCKETS,
            registry=r,
        )
        self._plugin_timers: dict[tuple[str, int], Any] = {}
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r.register(PoolCollector(store))
        prefix_scorers = [p for p in plugins if isinstance(p, SharedPrefixIndex)]
        if prefix_scorers:
            r.register(PrefixIndexCollector(prefix_scorers))
        for scorer in prefix_scorers:
            scorer.observe_hits(self.on_prefix_hit)
        predicting = [p for p in plugins if isinstance(p, ReportsPredictions)]
        self.predictions: PredictionMetrics | None = None
        if predicting:  # upstream's predicted-latency families, only where something predicts
            self.predictions = PredictionMetrics(r)
            for plugin in predicting:
                plugin.report_predictions(self.predictions)

    def on_prefix_hit(self, matched_chars: int, prompt_chars: int) -> None:
        self.prefix_hit_ratio.observe(matched_chars / prompt_chars if prompt_chars else 0.0)
        self.prefix_hit_bytes.observe(matched_chars)

    def _child(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, looked up once: prometheus_client validates the values and
        takes a lock on every call, a measurable share of a request's CPU at 1000 req/s."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    # --- director observer hooks -----------------------------------------------------
    def time_plugin(self, extension_point: str, plugin: Plugin, seconds: float) -> None:
        """A scheduling profile's PluginTimer; each plugin's histogram child is looked up once."""
        key = (extension_point, id(plugin))
        child = self._plugin_timers.get(key)
        if child is None:
            child = self._plugin_timers[key] = self.plugin_duration.labels(
                extension_point, plugin.type_name, plugin.name
            )
        child.observe(seconds)

    def on_routed(self, ctx: RequestContext) -> None:
        labels = _labels(ctx)
        res = ctx.resolution
        self._child(self.requests, *labels, str(res.priority) if res is not None else "0").inc()
        picked = ctx.picked
        if picked is not None:
            pod = picked.pod
            self._child(self.attempts, "success", labels[1], pod.name, pod.namespace, str(picked.port)).inc()
        if res is not None and res.rewrite is not None:
            self._child(self.rewrites, res.rewrite.ref.name, res.model, res.target_model).inc()
        self._child(self.request_sizes, *labels).observe(ctx.body_size)
        self._child(self.running, labels[0]).inc()
        if ctx.scheduling_seconds:
            self.scheduler_duration.observe(ctx.scheduling_seconds)

    def on_error(self, ctx: RequestContext, error: GatewayError) -> None:
        labels = _labels(ctx)
        self._child(self.errors, *labels, error.canonical_code).inc()  # upstream's label values
        if ctx.resolution is not None and ctx.picked is None and error.status in (429, 503):
            # the scheduler found no endpoint
            self._child(self.attempts, "failure", labels[1], "", "", "").inc()

    def on_complete(self, ctx: RequestContext) -> None:
        if ctx.picked is None or ctx.resolution is None:  # not routed, or routed without a body
            return
        labels = _labels(ctx)
        self._child(self.running, labels[0]).dec()
        # The response's end as timed (by Envoy, with the access log), not when the EPP heard of it.
        elapsed = (ctx.ended_at or time.monotonic()) - ctx.started
        self._child(self.duration, *labels).observe(elapsed)
        if ctx.response_bytes:
            self._child(self.response_sizes, *labels).observe(ctx.response_bytes)
        if ctx.response_status >= 400:
            self._child(self.errors, *labels, "ModelServerError").inc()
        if ctx.prompt_tokens:
            self._child(self.input_tokens, *labels).observe(ctx.prompt_tokens)
        if ctx.completion_tokens:
            self._child(self.output_tokens, *labels).observe(ctx.completion_tokens)
            self._child(self.ntpot, *labels).observe(elapsed / ctx.completion_tokens)
        if ctx.first_byte_at:
            self._child(self.ttft, *labels).observe(max(0.0, ctx.first_byte_at - ctx.started))
            if ctx.completion_tokens > 1:
                decode_s = max(0.0, ctx.started + elapsed - ctx.first_byte_at)
                self._child(self.tpot, *labels).observe(decode_s / (ctx.completion_tokens - 1))
        if ctx.usage is not None and ctx.usage.cached_tokens:
            self._child(self.cached_tokens, *labels).observe(ctx.usage.cached_tokens)


def _labels(ctx: RequestContext) -> tuple[str, str]:
    res = ctx.resolution
    if res is None:
        return ("", "")
    return (res.model, res.target_model)


class PoolCollector(Collector):
    """inference_pool_* gauges, read from the datastore only when Prometheus scrapes."""

    def __init__(self, store: Datastore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        kv = GaugeMetricFamily(
            "inference_pool_average_kv_cache_utilization",
            "The average kv cache utilization for an inference server pool.",
            labels=["name"],
        )
        queue = GaugeMetricFamily(
            "inference_pool_average_queue_size",
            "The average number of requests pending in the model server queue.",
            labels=["name"],
        )
        running = GaugeMetricFamily(
            "inference_pool_average_running_requests",
            "The average number of requests running on the model servers of the pool.",
            labels=["name"],
        )
        per_pod = GaugeMetricFamily(
            "inference_pool_per_pod_queue_size",
            "The total number of requests pending in the model server queue for each underlying pod.",
            labels=["model_server_pod", "name"],
        )
        ready = GaugeMetricFamily(
            "inference_pool_ready_pods",
            "The number of ready pods in the inference server pool.",
            labels=["name"],
        )
        for view in self.store.pools():
            name = view.pool.ref.name
            # As upstream: pods whose metrics are fresh. A dead server stays Ready in the
            # datastore until Kubernetes notices (never, with --resources files).
            endpoints = tuple(e for e in view.ready_endpoints() if e.metrics_ok)
            n = len(endpoints)
            kv.add_metric([name], sum(e.metrics.kv_cache_usage for e in endpoints) / n if n else 0.0)
            queue.add_metric([name], sum(e.metrics.waiting_queue for e in endpoints) / n if n else 0.0)
            running.add_metric([name], sum(e.metrics.running_requests for e in endpoints) / n if n else 0.0)
            for e in endpoints:
                per_pod.add_metric([e.pod.name, name], e.metrics.waiting_queue)
            ready.add_metric([name], len({e.pod for e in endpoints}))
        yield kv
        yield queue
        yield running
        yield per_pod
        yield ready
        info = InfoMetricFamily("inference_extension", "General information of the current build.")
        info.add_metric([], {"commit": "", "build_ref": __version__})
        yield info


class PrefixIndexCollector(Collector):
    """Size of the prefix-cache index (entries across the configured prefix scorers)."""

    def __init__(self, scorers: list[SharedPrefixIndex]) -> None:
        self.scorers = scorers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        size = GaugeMetricFamily("inference_extension_prefix_indexer_size", "Size of the prefix indexer.")
        size.add_metric([], sum(scorer.index_size() for scorer in self.scorers))
        yield size
