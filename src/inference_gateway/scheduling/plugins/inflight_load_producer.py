"""inflight-load-producer: upstream's source of per-endpoint in-flight request counts.

Here the director's ledger always counts in-flight requests per endpoint (`Endpoint.in_flight`,
up when a request is dispatched, down when its response ends), so this plugin has nothing to add:
it is accepted so upstream configs load, and consumers (active-request-scorer,
concurrency-detector, token-load-scorer) read the ledger whether or not it is configured.
In-flight tokens are the ledger's prompt-token estimates (`Endpoint.in_flight_tokens`);
token-load-scorer scales them to upstream's input-plus-output estimate.
"""

from __future__ import annotations

from typing import Any


class InFlightLoadProducer:
    type_name = "inflight-load-producer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name
