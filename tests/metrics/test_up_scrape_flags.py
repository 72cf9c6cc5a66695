"""`up --refresh-metrics-interval/--metrics-staleness-threshold/--metrics-scrape-timeout` reach
the EPP's scraper (and bad values are one-line usage errors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_gateway.commands.errors import UsageError
from inference_gateway.commands.up import UpFlags, build_stack
from inference_gateway.epp import EndpointPicker, EPPOptions
from inference_gateway.local.stack import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "local"


def test_up_scrape_flags_override_the_scraper_settings() -> None:
    # Free ports everywhere: never the demo's fixed ports (a running `make demo` must not fail this).
    flags = UpFlags(
        EXAMPLES,
        scrape_interval="500ms",
        staleness="10s",
        scrape_timeout="2s",
        port=free_port(),
        epp_port=free_port(),
        metrics_port=free_port(),
        health_port=free_port(),
    )
    stack = build_stack(flags)
    overrides = stack.options.scrape_overrides
    assert overrides == {"interval_s": 0.5, "stale_after_s": 10.0, "timeout_s": 2.0}
    # What the stack hands the EPP (LocalStack._start_epp passes these as scrape_overrides):
    epp = EndpointPicker(EPPOptions(scrape_overrides=overrides, metrics_port=None, health_port=None))
    cfg = epp.scraper.config
    assert (cfg.interval_s, cfg.stale_after_s, cfg.timeout_s) == (0.5, 10.0, 2.0)


@pytest.mark.parametrize(("field", "value"), [("scrape_interval", "fast"), ("scrape_timeout", "0")])
def test_bad_durations_are_usage_errors(field: str, value: str) -> None:
    with pytest.raises(UsageError, match=r"--refresh-metrics-interval|--metrics-scrape-timeout"):
        build_stack(UpFlags(EXAMPLES, **{field: value}))
