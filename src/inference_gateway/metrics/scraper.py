"""Scrape every endpoint's /metrics concurrently and keep its EndpointMetrics current."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import aiohttp

from inference_gateway.datastore.endpoint import Endpoint, EndpointMetrics
from inference_gateway.datastore.store import Datastore
from inference_gateway.metrics.mappings import EngineMapping, mapping_for
from inference_gateway.metrics.parse import Sample, parse_families

log = logging.getLogger(__name__)


@dataclass
class ScrapeConfig:
    interval_s: float = 0.05
    timeout_s: float = 1.0
    stale_after_s: float = 2.0
    failure_threshold: int = 3
    path: str = "/metrics"


def metrics_from_page(text: str, mapping: EngineMapping, previous: EndpointMetrics) -> EndpointMetrics:
    fams = parse_families(text, mapping.families())
    active, waiting, max_lora = _lora_state(fams.get(mapping.lora_info or "", []))
    block_size = previous.block_size
    for sample in fams.get(mapping.cache_info or "", []):
        with contextlib.suppress(KeyError, ValueError):
            block_size = int(sample.labels["block_size"])
    return EndpointMetrics(
        waiting_queue=int(_first(fams, mapping.waiting)),
        running_requests=int(_first(fams, mapping.running)),
        kv_cache_usage=_first(fams, mapping.kv_usage),
        active_adapters=active,
        waiting_adapters=waiting,
        max_active_adapters=max_lora,
        block_size=block_size,
        served_models=_model_names(fams),
        updated_at=time.monotonic(),
    )


def _first(fams: dict[str, list[Sample]], names: tuple[str, ...]) -> float:
    for name in names:
        samples = fams.get(name)
        if samples:
            return sum(s.value for s in samples)
    return 0.0


def _model_names(fams: dict[str, list[Sample]]) -> frozenset[str]:
    """Engines label their gauges with the served model name (vLLM: model_name)."""
    return frozenset(
        s.labels["model_name"] for samples in fams.values() for s in samples if "model_name" in s.labels
    )


def _lora_state(samples: list[Sample]) -> tuple[frozenset[str], frozenset[str], int]:
    """vLLM exports one sample per state change; the newest (largest value) is current."""
    if not samples:
        return frozenset(), frozenset(), 0
    newest = max(samples, key=lambda s: s.value)

    def names(key: str) -> frozenset[str]:
        return frozenset(a for a in newest.labels.get(key, "").split(",") if a)

    try:
        max_lora = int(newest.labels.get("max_lora", "0"))
    except ValueError:
        max_lora = 0
    return names("running_lora_adapters"), names("waiting_lora_adapters"), max_lora


class Scraper:
    def __init__(self, store: Datastore, config: ScrapeConfig | None = None) -> None:
        self.store = store
        self.config = config or ScrapeConfig()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        self._task = asyncio.create_task(self._loop(), name="metrics-scraper")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session:
            await self._session.close()

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            await self.scrape_once()
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.config.interval_s - elapsed))

    async def scrape_once(self) -> None:
        endpoints = self.store.endpoints()
        if endpoints:
            await asyncio.gather(*(self._scrape(e) for e in endpoints))
        self._mark_stale(endpoints)

    async def _scrape(self, endpoint: Endpoint) -> None:
        assert self._session is not None
        url = f"http://{endpoint.address}{self.config.path}"
        try:
            async with self._session.get(url) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
                text = await resp.text()
            endpoint.metrics = metrics_from_page(text, mapping_for(endpoint.engine), endpoint.metrics)
            if not endpoint.metrics_ok:
                log.info("endpoint %s metrics recovered", endpoint.name)
            endpoint.metrics_ok = True
        except (aiohttp.ClientError, TimeoutError, RuntimeError, ValueError) as exc:
            endpoint.metrics.scrape_failures += 1
            if endpoint.metrics.scrape_failures == self.config.failure_threshold:
                log.warning(
                    "endpoint %s: %d failed scrapes (%s); excluding it",
                    endpoint.name,
                    endpoint.metrics.scrape_failures,
                    exc,
                )

    def _mark_stale(self, endpoints: list[Endpoint]) -> None:
        now = time.monotonic()
        for e in endpoints:
            m = e.metrics
            e.metrics_ok = (
                m.scrape_failures < self.config.failure_threshold and m.age(now) <= self.config.stale_after_s
            )
