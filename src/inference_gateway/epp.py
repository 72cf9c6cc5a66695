"""The Endpoint Picker runtime: datastore, scraper, director, and its ext_proc/metrics/health servers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from inference_gateway.datastore.store import Datastore
from inference_gateway.extproc.server import ExtProcServicer, serve
from inference_gateway.flowcontrol import build_flow_controller
from inference_gateway.metrics.dcgm import DcgmSource
from inference_gateway.metrics.scraper import ScrapeConfig, Scraper
from inference_gateway.observability.autoscaling import AutoscalingSignals
from inference_gateway.observability.metrics import EPPMetrics
from inference_gateway.observability.server import HealthServer, MetricsServer
from inference_gateway.observability.tracing import RequestTracer
from inference_gateway.requestcontrol.director import Director
from inference_gateway.requestcontrol.preemption import SheddablePreemption
from inference_gateway.requestcontrol.resolve import ModelResolver
from inference_gateway.requestcontrol.usage import UsageAccounting
from inference_gateway.scheduling.config import EndpointPickerConfig, load_config
from inference_gateway.scheduling.interfaces import Service
from inference_gateway.scheduling.plugins.dcgm_data_source import DcgmDataSource
from inference_gateway.scheduling.plugins.media_token_estimator import MediaTokenEstimator
from inference_gateway.scheduling.pools import PoolSchedulers
from inference_gateway.scheduling.prefix_sync import PrefixSync, PrefixSyncOptions
from inference_gateway.scheduling.profile import Scheduler

log = logging.getLogger(__name__)


@dataclass
class EPPOptions:
    host: str = "127.0.0.1"
    grpc_port: int = 9002
    health_port: int | None = 9003
    metrics_port: int | None = 9090
    config_text: str | None = None
    # Per-pool EndpointPickerConfig text, keyed by "namespace/name" or pool name; other pools
    # use config_text. Only scheduling is per pool; flow control and scraping are EPP-wide.
    pool_configs: dict[str, str] = field(default_factory=dict)
    scrape: ScrapeConfig = field(default_factory=ScrapeConfig)
    max_body_bytes: int = 16 * 1024 * 1024
    prefix_sync: PrefixSyncOptions | None = None  # share the prefix index with peer replicas
    # Upstream flags: honour envoy.lb.subset_hint; 404 unknown models instead of forwarding them;
    # the model of requests without one; scrape settings and metric specs that beat the config.
    subset_filter: bool = True
    health_checking: bool = False  # grpc.health.v1 on the ext_proc port as well
    strict_models: bool = False
    default_model: str | None = None
    scrape_overrides: dict[str, Any] = field(default_factory=dict)
    metric_specs: dict[str, str] = field(default_factory=dict)


class EndpointPicker:
    def __init__(
        self,
        options: EPPOptions,
        store: Datastore | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.options = options
        self.store = store or Datastore()
        self.config: EndpointPickerConfig = load_config(options.config_text)
        self.metrics = EPPMetrics(self.store, plugins=self.config.plugins.values())
        registry = self.metrics.registry
        self.flow = build_flow_controller(
            self.config.sections.get("flowControl"),
            self.config.saturation_detector(),
            registry,
            self.config.plugins,
        )
        self.pool_configs = {
            pool: load_config(text, source=f"EndpointPickerConfig for pool {pool}")
            for pool, text in options.pool_configs.items()
        }
        self.director = Director(
            self.store,
            self._scheduler(),
            max_body_bytes=options.max_body_bytes,
            saturation=self.config.saturation_detector(),
            flow=self.flow,
            usage=UsageAccounting(registry),
            resolver=ModelResolver(
                self.store, strict_models=options.strict_models, default_model=options.default_model
            ),
            subset_filter=options.subset_filter,
            media=next((p for p in self.config.plugins.values() if isinstance(p, MediaTokenEstimator)), None),
            preemption=self._preemption(registry),
        )
        self.director.observers.append(self.metrics)
        self.autoscaling = AutoscalingSignals(self.store)
        registry.register(self.autoscaling)
        self.director.observers.append(self.autoscaling)
        if tracer_provider is not None:
            self.director.observers.append(RequestTracer(tracer_provider))
        mappings = self.config.metric_mappings.with_default_specs(options.metric_specs)
        self.scraper = Scraper(self.store, self._scrape_config(), mappings)
        self.dcgm = _dcgm_source(self.store, [self.config, *self.pool_configs.values()])
        if self.flow is not None:
            self.scraper.listeners.append(self.flow.notify)
        self.metrics_server = (
            MetricsServer(registry, options.host, options.metrics_port)
            if options.metrics_port is not None
            else None
        )
        self.health_server = (
            HealthServer(self.store, options.host, options.health_port)
            if options.health_port is not None
            else None
        )
        self.prefix_sync = (
            PrefixSync.for_plugins(self.config.plugins, options.prefix_sync, registry)
            if options.prefix_sync is not None
            else None
        )
        self.extproc = ExtProcServicer(self.director)
        self._server: grpc.aio.Server | None = None
        self.port = 0

    def _preemption(self, registry: CollectorRegistry) -> SheddablePreemption | None:
        found = next((p for p in self.config.plugins.values() if isinstance(p, SheddablePreemption)), None)
        if found is not None:
            found.register_metrics(registry)
        return found

    def _scheduler(self) -> Scheduler:
        if not self.pool_configs:
            return self.config.scheduler
        return PoolSchedulers(self.config.scheduler, {p: c.scheduler for p, c in self.pool_configs.items()})

    def _scrape_config(self) -> ScrapeConfig:
        from_config = {
            "path": self.config.metrics_path,
            "scheme": self.config.metrics_scheme,
            "stale_after_s": self.config.saturation.metrics_staleness_s,
            "insecure_skip_verify": self.config.metrics_insecure_skip_verify,
        }
        # Scrape flags given on the command line win over the config.
        return replace(self.options.scrape, **{**from_config, **self.options.scrape_overrides})

    def _services(self) -> list[Service]:
        plugins = [p for c in (self.config, *self.pool_configs.values()) for p in c.plugins.values()]
        return [p for p in plugins if isinstance(p, Service)]

    async def start(self, credentials: grpc.ServerCredentials | None = None) -> int:
        await self.scraper.start()
        for service in self._services():
            await service.start()
        if self.dcgm is not None:
            await self.dcgm.start()
        if self.metrics_server is not None:
            await self.metrics_server.start()
        if self.health_server is not None:
            await self.health_server.start()
        self._server, self.port = await serve(
            self.director,
            self.options.host,
            self.options.grpc_port,
            credentials,
            self.extproc,
            health_checking=self.options.health_checking,
        )
        log.info("EPP ext_proc listening on %s:%d", self.options.host, self.port)
        if self.prefix_sync is not None:
            await self.prefix_sync.start()
        return self.port

    async def stop(self, grace_s: float = 1.0) -> None:
        """New ext_proc streams are refused at once (Envoy applies the pool's failure mode);
        streams already routed detach (their requests carry on through Envoy); those still being
        routed, queued ones included, get `grace_s` to finish before they are cancelled. Flow
        control closes last, so no request that reached the EPP before the stop is refused as
        "shutting down" while it could still be routed."""
        if self.prefix_sync is not None:
            await self.prefix_sync.stop(grace_s)
        if self._server is not None:
            self.extproc.drain()
            await self._server.stop(grace_s)
        if self.flow is not None:
            await self.flow.close()
        for side in (self.health_server, self.metrics_server):
            if side is not None:
                await side.stop()
        await self.scraper.stop()
        for service in self._services():
            await service.stop()
        if self.dcgm is not None:
            await self.dcgm.stop()


def _dcgm_source(store: Datastore, configs: list[EndpointPickerConfig]) -> DcgmSource | None:
    """One DCGM scraper for the EPP, from the first dcgm-data-source any config declares."""
    for config in configs:
        for plugin in config.plugins.values():
            if isinstance(plugin, DcgmDataSource):
                return DcgmSource(store, plugin.config)
    return None
