"""Failed scrapes: counted per pod and reason, logged with a real message, backed off; a pod
whose metrics fail drops out of inference_pool_ready_pods."""

from __future__ import annotations

import logging

import pytest
from fake_engine import FakeEngine, store_for_ports
from prometheus_client import CollectorRegistry

from inference_gateway.metrics.scraper import ScrapeConfig, Scraper
from inference_gateway.observability.metrics import EPPMetrics


async def test_timeouts_are_counted_and_logged_with_a_message(caplog: pytest.LogCaptureFixture) -> None:
    engine = FakeEngine(hang_s=5.0)
    port = await engine.start()
    store = store_for_ports([port])
    registry = CollectorRegistry()
    scraper = Scraper(store, ScrapeConfig(timeout_s=0.1, failure_threshold=2), registry=registry)
    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(2):
                await scraper.scrape_once()
        engine.hang_s, engine.status = 0.0, 503
        await scraper.scrape_once()
    finally:
        await scraper.stop()
        await engine.stop()
    name = "inference_extension_metrics_scrape_failures_total"
    assert registry.get_sample_value(name, {"model_server_pod": "pod", "reason": "timeout"}) == 2
    assert registry.get_sample_value(name, {"model_server_pod": "pod", "reason": "http"}) == 1
    assert "no answer within the 0.1s scrape timeout" in caplog.text


def test_failing_and_slow_servers_are_scraped_less_often() -> None:
    scraper = Scraper(store_for_ports([1]), ScrapeConfig(interval_s=0.05, max_backoff_s=1.0))
    assert scraper.next_delay(True, 0.01, 0) == pytest.approx(0.04)  # on time
    assert scraper.next_delay(True, 0.3, 0) == pytest.approx(0.3)  # slow: wait as long as it took
    assert scraper.next_delay(True, 5.0, 0) == 1.0
    delays = [scraper.next_delay(False, 0.01, n) for n in range(1, 7)]
    assert delays == sorted(delays) and delays[0] == pytest.approx(0.1) and delays[-1] == 1.0


async def test_ready_pods_gauge_drops_when_a_server_stops_answering() -> None:
    engines = [FakeEngine(), FakeEngine()]
    ports = [await e.start() for e in engines]
    store = store_for_ports(ports)
    registry = CollectorRegistry()
    EPPMetrics(store, registry)
    scraper = Scraper(store, ScrapeConfig(timeout_s=0.2, failure_threshold=1))
    # The fake store puts both ports on one pod: count endpoints per pod via distinct pods.
    for i, e in enumerate(store.endpoints()):
        e.pod = e.pod.__class__(e.pod.namespace, f"pod-{i}")
    try:
        await scraper.scrape_once()
        assert registry.get_sample_value("inference_pool_ready_pods", {"name": "pool"}) == 2
        await engines[0].stop()
        await scraper.scrape_once()
        assert registry.get_sample_value("inference_pool_ready_pods", {"name": "pool"}) == 1
    finally:
        await scraper.stop()
        for e in engines:
            await e.stop()
