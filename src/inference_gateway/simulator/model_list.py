"""GET /v1/models as a simulated vLLM answers it, and the EPP's model inventory in virtual time.

`model_list` is the one body the HTTP server serves and the virtual fleet's servers list: the
base model (`parent: null`, with `max_model_len`) and every registered LoRA adapter with the
base model as its parent, as vLLM's OpenAI server lists them.

`VirtualInventory` is metrics.inventory.ModelInventory's schedule without its HTTP: each
server's list is parsed by the inventory's own parser and attached by its own `attach`, once
before the first request is routed (as ModelInventory.start reads every known endpoint before
the EPP serves), then every `interval_s` of virtual time, and again after a 404 from that
server, no sooner than `min_refresh_gap_s` after its previous read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.metrics.inventory import InventoryConfig, attach, parse_model_list, served_models

if TYPE_CHECKING:
    from inference_gateway.requestcontrol.director import RequestContext
    from inference_gateway.requestcontrol.errors import GatewayError
    from inference_gateway.simulator.fleet_types import EndpointSnapshot


def model_list(
    base: str, adapters: Mapping[str, str] | Iterable[str], created: int, max_model_len: int | None
) -> dict[str, Any]:
    """vLLM's model list: `adapters` maps each adapter to its path (its card's `root`)."""
    paths = adapters if isinstance(adapters, Mapping) else {a: f"/sim/loras/{a}" for a in adapters}

    def card(model_id: str, root: str, parent: str | None) -> dict[str, Any]:
        return {
            "id": model_id,
            "object": "model",
            "created": created,
            "owned_by": "vllm",
            "root": root,
            "parent": parent,
            # As vLLM: only the base model's card carries max_model_len.
            "max_model_len": max_model_len if parent is None else None,
            "permission": [],
        }

    cards = [card(base, base, None), *(card(name, path, base) for name, path in paths.items())]
    return {"object": "list", "data": cards}


class VirtualInventory:
    """A RequestObserver (a 404 asks for a re-read) that lands model lists on each sync."""

    def __init__(self, config: InventoryConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.reads = 0
        self._due: dict[str, float] = {}  # endpoint address -> virtual time of its next read
        self._last: dict[str, float] = {}  # endpoint address -> virtual time of its last read

    def refresh_due(self, endpoints: Sequence[Endpoint], snapshots: Sequence[EndpointSnapshot]) -> None:
        """Read the list of every endpoint whose read is due (a new endpoint's is due at once)."""
        now = self.clock()
        for endpoint, snap in zip(endpoints, snapshots, strict=True):
            if self._due.get(endpoint.address, now) > now and served_models(endpoint) is not None:
                continue
            body = orjson.dumps(model_list(snap.model, snap.adapters, 0, None))
            attach(endpoint, parse_model_list(body, now))
            self.reads += 1
            self._last[endpoint.address] = now
            self._due[endpoint.address] = now + self.config.interval_s

    # --- director hooks, as ModelInventory's: a 404 from a server may mean a lost adapter ---
    def on_routed(self, ctx: RequestContext) -> None:
        return None

    def on_error(self, ctx: RequestContext, error: GatewayError) -> None:
        return None

    def on_complete(self, ctx: RequestContext) -> None:
        if ctx.response_status != 404 or ctx.served is None:
            return
        address = ctx.served.address
        soonest = max(self.clock(), self._last.get(address, 0.0) + self.config.min_refresh_gap_s)
        self._due[address] = min(self._due.get(address, soonest), soonest)
