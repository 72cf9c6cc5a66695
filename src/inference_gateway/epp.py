"""The Endpoint Picker runtime: datastore, scraper, director, and its ext_proc/metrics/health servers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from inference_gateway.datastore.ledger import InFlightLedger
from inference_gateway.datastore.store import Datastore
from inference_gateway.extproc.server import ExtProcServicer, serve
from inference_gateway.flowcontrol import FlowController, FlowControlMetrics
from inference_gateway.metrics.dcgm import DcgmSource
from inference_gateway.metrics.inventory import InventoryConfig, ModelInventory
from inference_gateway.metrics.scraper import ScrapeConfig, Scraper
from inference_gateway.observability.autoscaling import AutoscalingSignals
from inference_gateway.observability.metrics import EPPMetrics
from inference_gateway.observability.server import HealthServer, MetricsServer
from inference_gateway.observability.status import StatusBoard
from inference_gateway.observability.tracing import RequestTracer
from inference_gateway.requestcontrol.director import Director
from inference_gateway.requestcontrol.resolve import ModelResolver
from inference_gateway.requestcontrol.usage import UsageAccounting
from inference_gateway.runtime import PoolRuntime, PoolRuntimes
from inference_gateway.scheduling.config import EndpointPickerConfig, load_config
from inference_gateway.scheduling.interfaces import Service
from inference_gateway.scheduling.plugins.dcgm_data_source import DcgmDataSource
from inference_gateway.scheduling.plugins.models_data_source import declared_inventory_config
from inference_gateway.scheduling.prefix_sync import PrefixSync, PrefixSyncOptions

log = logging.getLogger(__name__)


@dataclass
class EPPOptions:
    host: str = "127.0.0.1"
    grpc_port: int = 9002
    health_port: int | None = 9003
    metrics_port: int | None = 9090
    config_text: str | None = None
    # Per-pool EndpointPickerConfig text, keyed by "namespace/name" or pool name; other pools
    # use config_text. Each gets its own PoolRuntime: plugins, saturation, flow control,
    # scrape mappings and prefix index. The scrape interval and staleness are EPP-wide.
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
    # One of several worker processes of one EPP (--workers): the ext_proc and health ports are
    # shared with the other workers (SO_REUSEPORT).
    reuse_port: bool = False


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
        self.registry = CollectorRegistry()
        self.runtimes = self._runtimes(options)
        self.metrics = EPPMetrics(self.store, self.registry, plugins=self.runtimes.plugins().values())
        registry = self.registry
        for runtime in self.runtimes:
            runtime.scheduler.time_plugins(self.metrics.time_plugin)
        self.director = Director(
            self.store,
            self.runtimes,
            max_body_bytes=options.max_body_bytes,
            usage=UsageAccounting(registry),
            resolver=ModelResolver(
                self.store, strict_models=options.strict_models, default_model=options.default_model
            ),
            subset_filter=options.subset_filter,
        )
        self._register_preemption(registry)
        self.director.observers.append(self.metrics)
        self.autoscaling = AutoscalingSignals(self.store)
        registry.register(self.autoscaling)
        self.director.observers.append(self.autoscaling)
        if tracer_provider is not None:
            self.director.observers.append(RequestTracer(tracer_provider))
        for runtime in self.runtimes:
            runtime.metric_mappings = runtime.metric_mappings.with_default_specs(options.metric_specs)
        self.scraper = Scraper(
            self.store,
            self._scrape_config(),
            self.runtimes.default.metric_mappings,
            self.runtimes.scrape_target,
            registry,
        )
        self.dcgm = _dcgm_source(self.store, [runtime.config for runtime in self.runtimes])
        self.inventory = ModelInventory(self.store, self._inventory_config())
        self.director.observers.append(self.inventory)  # a server's 404 re-reads its model list
        for runtime in self.runtimes:
            if runtime.flow is not None:
                self.scraper.listeners.append(runtime.flow.notify)
        self.status = StatusBoard(self.store, self.flow)  # the live page on the metrics port
        self.director.observers.append(self.status)
        self.metrics_server = (
            MetricsServer(registry, options.host, options.metrics_port, self.status.routes())
            if options.metrics_port is not None
            else None
        )
        self.health_server = (
            HealthServer(self.store, options.host, options.health_port, reuse_port=options.reuse_port)
            if options.health_port is not None
            else None
        )
        self.prefix_sync = (
            PrefixSync.for_plugins(self.runtimes.plugins(), options.prefix_sync, registry)
            if options.prefix_sync is not None
            else None
        )
        self.extproc = ExtProcServicer(self.director)
        self._server: grpc.aio.Server | None = None
        self.port = 0

    def _runtimes(self, options: EPPOptions) -> PoolRuntimes:
        flow_metrics = FlowControlMetrics(self.registry)
        self.ledger = InFlightLedger()
        default = PoolRuntime(self.config, flow_metrics=flow_metrics, ledger=self.ledger)
        per_pool = {
            pool: PoolRuntime(
                load_config(text, source=f"EndpointPickerConfig for pool {pool}"),
                name=pool,
                flow_metrics=flow_metrics,
                ledger=self.ledger,
            )
            for pool, text in options.pool_configs.items()
        }
        return PoolRuntimes(default, per_pool)

    @property
    def flow(self) -> FlowController | None:
        """The default pool's flow controller (None when its config disables flow control)."""
        return self.runtimes.default.flow

    def _register_preemption(self, registry: CollectorRegistry) -> None:
        """Sheddable preemption counts per pool on one counter, whichever runtimes configure it."""
        found = [r.preemption for r in self.runtimes if r.preemption is not None]
        if found:
            found[0].register_metrics(registry)
            for other in found[1:]:
                other.preemptions = found[0].preemptions

    def _scrape_config(self) -> ScrapeConfig:
        from_config = {
            "path": self.config.metrics_path,
            "scheme": self.config.metrics_scheme,
            "stale_after_s": self.config.saturation.metrics_staleness_s,
            "insecure_skip_verify": self.config.metrics_insecure_skip_verify,
        }
        # Scrape flags given on the command line win over the config.
        return replace(self.options.scrape, **{**from_config, **self.options.scrape_overrides})

    def _inventory_config(self) -> InventoryConfig:
        plugins = [p for r in self.runtimes for p in r.config.plugins.values()]
        return declared_inventory_config(plugins, self.config.metrics_scheme)

    def _services(self) -> list[Service]:
        plugins = [p for r in self.runtimes for p in r.config.plugins.values()]
        return [p for p in plugins if isinstance(p, Service)]

    async def start(self, credentials: grpc.ServerCredentials | None = None) -> int:
        await self.scraper.start()
        await self.inventory.start()
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
            reuse_port=self.options.reuse_port,
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
        await self.runtimes.close()
        for side in (self.health_server, self.metrics_server):
            if side is not None:
                await side.stop()
        await self.scraper.stop()
        await self.inventory.stop()
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
