"""Projected endpoint state: the last scrape corrected by what this EPP did since.

A scrape is a snapshot; between two scrapes (50 ms by default) the EPP may route dozens of
requests. Scorers that read only the snapshot see every endpoint unchanged and send them all
to the same "best" endpoint (herding). The in-flight ledger's per-endpoint load
(datastore/ledger.py: `Endpoint.in_flight`, requests this EPP sent that have not finished, and
`in_flight_tokens`, their prompt tokens) is marked
on the metrics when a scrape lands (`mark_scraped`); the difference since that mark is what
was dispatched minus what finished since the snapshot was taken:

    waiting'  = max(0, waiting + Δrequests)
    running'  = max(0, running + Δrequests)
    kv'       = clamp(kv + Δtokens / (block_size * num_gpu_blocks), 0, 1)  (when the engine
                reports its cache geometry)

Δrequests counts a new request as waiting although the engine may start it at once: it
orders endpoints by load, it does not predict the engine's split between the two.
Producers that do not mark (tests building metrics by hand) are marked on first read.
"""

from __future__ import annotations

from inference_gateway.datastore.endpoint import Endpoint, EndpointMetrics
from inference_gateway.media import CHARS_PER_TOKEN
from inference_gateway.scheduling.types import SchedulingRequest


def prompt_tokens(request: SchedulingRequest) -> int:
    """The request's prompt tokens as the ledger counts them (text estimate + media)."""
    return len(request.prompt) // CHARS_PER_TOKEN + request.media_tokens


def mark_scraped(endpoint: Endpoint) -> None:
    """Record the ledger as of the scrape that produced `endpoint.metrics`."""
    m = endpoint.metrics
    m.in_flight_at_scrape = endpoint.in_flight
    m.in_flight_tokens_at_scrape = endpoint.in_flight_tokens


def _mark(endpoint: Endpoint) -> EndpointMetrics:
    m = endpoint.metrics
    if m.in_flight_at_scrape is None:
        mark_scraped(endpoint)
    return m


# request_delta, waiting and running run for every endpoint of every decision: no max(), and
# the scrape mark read inline.
def request_delta(endpoint: Endpoint) -> int:
    """Requests dispatched minus requests finished since the scrape."""
    at_scrape = endpoint.metrics.in_flight_at_scrape
    if at_scrape is None:
        at_scrape = _mark(endpoint).in_flight_at_scrape or 0
    return endpoint.in_flight - at_scrape


def waiting(endpoint: Endpoint) -> int:
    projected = endpoint.metrics.waiting_queue + request_delta(endpoint)
    return projected if projected > 0 else 0


def running(endpoint: Endpoint) -> int:
    projected = endpoint.metrics.running_requests + request_delta(endpoint)
    return projected if projected > 0 else 0


def kv_usage(endpoint: Endpoint) -> float:
    m = _mark(endpoint)
    capacity = m.block_size * m.num_gpu_blocks
    if capacity <= 0:
        return m.kv_cache_usage
    tokens = endpoint.in_flight_tokens - (m.in_flight_tokens_at_scrape or 0)
    return min(1.0, max(0.0, m.kv_cache_usage + tokens / capacity))
