"""Scrape every endpoint's /metrics and keep its EndpointMetrics and health current.

Each endpoint gets its own polling task, so a slow or black-holed pod (1 s timeout) never
delays the others. A supervisor task reconciles those tasks with the datastore and marks
endpoints whose metrics went stale or whose scrapes keep failing as unusable
(`Endpoint.metrics_ok = False`); they come back on the next good scrape.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.datastore.store import Datastore
from inference_gateway.metrics.extract import metrics_from_page
from inference_gateway.metrics.mappings import MappingRegistry
from inference_gateway.metrics.pollers import EndpointPollers
from inference_gateway.scheduling.projection import mark_scraped

log = logging.getLogger(__name__)


@dataclass
class ScrapeConfig:
    interval_s: float = 0.05
    timeout_s: float = 1.0
    stale_after_s: float = 2.0
    failure_threshold: int = 3
    max_backoff_s: float = 1.0  # longest wait between scrapes of a failing or slow server
    path: str = "/metrics"
    scheme: str = "http"
    insecure_skip_verify: bool = True  # https scrapes: upstream's metrics-data-source default


@dataclass(frozen=True)
class ScrapeTarget:
    """Where an endpoint's metrics page is and how to read it (its pool's data-layer config)."""

    scheme: str
    path: str
    mappings: MappingRegistry


class Scraper(EndpointPollers):
    name = "scrape"

    def __init__(
        self,
        store: Datastore,
        config: ScrapeConfig | None = None,
        mappings: MappingRegistry | None = None,
        targets: Callable[[Endpoint], ScrapeTarget] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(store)
        self.config = config or ScrapeConfig()
        self.mappings = mappings or MappingRegistry()
        default = ScrapeTarget(self.config.scheme, self.config.path, self.mappings)
        # Per pool when the EPP serves several pools with their own configs.
        self.target_for: Callable[[Endpoint], ScrapeTarget] = targets or (lambda _e: default)
        # Called after every successful scrape (flow control re-checks capacity then).
        self.listeners: list[Callable[[], None]] = []
        self.failures_total = Counter(
            "inference_extension_metrics_scrape_failures_total",
            "Failed scrapes of model servers' metrics, per pod and reason "
            "(timeout, connection, http, parse).",
            ["model_server_pod", "reason"],
            registry=registry,
        )

    def new_session(self) -> aiohttp.ClientSession:
        # keep-alive: one pooled connection per endpoint, reused every interval.
        insecure = self.config.scheme == "https" and self.config.insecure_skip_verify
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ssl=not insecure)
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        return aiohttp.ClientSession(connector=connector, timeout=timeout)

    # --- one-shot API (tests, CLI) ------------------------------------------
    async def scrape_once(self) -> None:
        """Scrape every endpoint concurrently once, then refresh health flags."""
        self._open_session()
        endpoints = self.store.endpoints()
        if endpoints:
            await asyncio.gather(*(self.scrape_endpoint(e) for e in endpoints))
        self.refresh_health()

    async def scrape_endpoint(self, endpoint: Endpoint) -> bool:
        session = self._open_session()
        target = self.target_for(endpoint)
        url = f"{target.scheme}://{endpoint.address}{target.path}"
        try:
            async with session.get(url) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
                text = await resp.text()
            mapping = target.mappings.for_labels(endpoint.labels)
            seen_before = endpoint.metrics.updated_at > 0
            endpoint.metrics = metrics_from_page(text, mapping, endpoint.metrics)
            mark_scraped(endpoint)
        except (aiohttp.ClientError, TimeoutError, RuntimeError, ValueError, UnicodeDecodeError) as exc:
            self._record_failure(endpoint, exc)
            return False
        if not endpoint.metrics_ok:
            if seen_before:
                log.info("endpoint %s (%s): metrics fresh again", endpoint.name, endpoint.address)
            endpoint.metrics_ok = True
        for listener in self.listeners:
            listener()
        return True

    def _record_failure(self, endpoint: Endpoint, exc: BaseException) -> None:
        reason, message = self.describe_failure(exc)
        self.failures_total.labels(endpoint.pod.name, reason).inc()
        m = endpoint.metrics
        m.scrape_failures += 1
        if m.scrape_failures == self.config.failure_threshold:
            endpoint.metrics_ok = False
            log.warning(
                "endpoint %s (%s): %d failed scrapes (%s); excluding it until it recovers",
                endpoint.name,
                endpoint.address,
                m.scrape_failures,
                message,
            )

    def describe_failure(self, exc: BaseException) -> tuple[str, str]:
        """(metric reason, log message); aiohttp's timeout error carries no text of its own."""
        if isinstance(exc, TimeoutError):
            return "timeout", f"no answer within the {self.config.timeout_s:g}s scrape timeout"
        if isinstance(exc, aiohttp.ClientConnectionError):
            return "connection", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, RuntimeError):
            return "http", str(exc)
        return "parse", f"{type(exc).__name__}: {exc}"

    def refresh_health(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        cfg = self.config
        for e in self.store.endpoints():
            m = e.metrics
            ok = m.scrape_failures < cfg.failure_threshold and m.age(now) <= cfg.stale_after_s
            if e.metrics_ok and not ok and m.updated_at and m.scrape_failures < cfg.failure_threshold:
                log.warning("endpoint %s (%s): metrics stale (%.1fs old)", e.name, e.address, m.age(now))
            e.metrics_ok = ok

    # --- background polling (EndpointPollers) ------------------------------------
    def tick_s(self) -> float:
        return self.config.interval_s

    def on_tick(self) -> None:
        self.refresh_health()

    async def poll(self, endpoint: Endpoint) -> None:
        while True:
            started = time.monotonic()
            ok = await self.scrape_endpoint(endpoint)
            await asyncio.sleep(
                self.next_delay(ok, time.monotonic() - started, endpoint.metrics.scrape_failures)
            )

    def next_delay(self, ok: bool, took_s: float, failures: int) -> float:
        """Seconds until an endpoint's next scrape. A healthy, quick server is read every
        interval; a failing one backs off exponentially and a slow one waits as long as its
        last answer took, both capped at max_backoff_s, so a starved or dead server is not
        hammered while the others stay fresh."""
        cfg = self.config
        if not ok:
            return min(cfg.interval_s * 2 ** min(failures, 16), max(cfg.max_backoff_s, cfg.interval_s))
        if took_s > cfg.interval_s:
            return min(took_s, max(cfg.max_backoff_s, cfg.interval_s))
        return cfg.interval_s - took_s
