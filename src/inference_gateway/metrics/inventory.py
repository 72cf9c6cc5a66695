"""Which models and LoRA adapters each endpoint can serve, from its OpenAI `GET /v1/models`.

vLLM lists its base model (`parent: null`) and every LoRA adapter it has loaded, idle or not
(`parent`: the base model), whereas its `vllm:lora_requests_info` metric names only adapters
with running or waiting requests. `ModelInventory` polls that list on a slow interval (models
change only when an operator loads or unloads an adapter, or a server restarts), and at once
when a server answers 404 for a model (it may have lost an adapter), and attaches the result to
the endpoint as the `SERVED_MODELS` attribute. A server whose list cannot be read has no
attribute: unknown, not "serves nothing".

`start` reads the lists of the endpoints already known before it returns (bounded by the
timeout), so the EPP, which starts its ext_proc server after the inventory, routes its first
request knowing which pods hold which adapter rather than guessing among unknown ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.datastore.store import Datastore
from inference_gateway.metrics.pollers import EndpointPollers

if TYPE_CHECKING:
    from inference_gateway.requestcontrol.director import RequestContext
    from inference_gateway.requestcontrol.errors import GatewayError

log = logging.getLogger(__name__)

SERVED_MODELS = "models.served"
RETRY_UNKNOWN_S = 5.0


@dataclass(frozen=True, slots=True)
class ServedModels:
    base: frozenset[str]
    adapters: dict[str, str] = field(hash=False)  # adapter name -> parent (base) model
    fetched_at: float = field(default=0.0, compare=False)

    def serves(self, model: str) -> bool:
        return model in self.base or model in self.adapters


def attach(endpoint: Endpoint, served: ServedModels) -> None:
    """Land a model list on the endpoint (logging what changed): what every reader sees."""
    previous = served_models(endpoint)
    if previous is None or previous.base != served.base or previous.adapters != served.adapters:
        log.info(
            "endpoint %s serves %s; adapters: %s",
            endpoint.name,
            ", ".join(sorted(served.base)) or "-",
            ", ".join(sorted(served.adapters)) or "-",
        )
    endpoint.attributes[SERVED_MODELS] = served


def served_models(endpoint: Endpoint) -> ServedModels | None:
    found = endpoint.attributes.get(SERVED_MODELS)
    return found if isinstance(found, ServedModels) else None


def can_serve(endpoint: Endpoint, model: str) -> bool | None:
    """True when the server lists `model` (or its metrics show it serving it), False when its
    list is known and lacks it, None when nothing is known yet."""
    m = endpoint.metrics
    if model in m.served_models or model in m.active_adapters or model in m.waiting_adapters:
        return True
    served = served_models(endpoint)
    return None if served is None else served.serves(model)


def parse_model_list(raw: bytes, now: float) -> ServedModels:
    """An OpenAI model list: {"object": "list", "data": [{"id", "parent", ...}]}."""
    doc: Any = orjson.loads(raw)
    cards = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(cards, list):
        raise ValueError("no 'data' list in the model list")
    base: set[str] = set()
    adapters: dict[str, str] = {}
    for card in cards:
        model_id = card.get("id") if isinstance(card, dict) else None
        if not isinstance(model_id, str):
            raise ValueError(f"model card without a string 'id': {card!r}")
        parent = card.get("parent")
        if isinstance(parent, str) and parent:
            adapters[model_id] = parent
        else:
            base.add(model_id)
    return ServedModels(frozenset(base), adapters, now)


@dataclass
class InventoryConfig:
    path: str = "/v1/models"
    scheme: str = "http"
    interval_s: float = 30.0
    timeout_s: float = 2.0
    insecure_skip_verify: bool = True  # https: skip certificate checks (models-data-source's default)
    # A 404 asks for a refresh; a server answering many 404s is re-read at most this often.
    min_refresh_gap_s: float = 1.0


class ModelInventory(EndpointPollers):
    """A data producer: one polling task per endpoint, woken early by `refresh_soon`."""

    name = "models"

    def __init__(self, store: Datastore, config: InventoryConfig | None = None) -> None:
        super().__init__(store)
        self.config = config or InventoryConfig()
        self._wake: dict[str, asyncio.Event] = {}  # endpoint address -> its poller's alarm

    def new_session(self) -> aiohttp.ClientSession:
        insecure = self.config.scheme == "https" and self.config.insecure_skip_verify
        connector = aiohttp.TCPConnector(ssl=not insecure)
        return aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.config.timeout_s)
        )

    async def refresh(self, endpoint: Endpoint) -> ServedModels | None:
        """Read one endpoint's model list now; on failure its inventory becomes unknown."""
        url = f"{self.config.scheme}://{endpoint.address}{self.config.path}"
        try:
            async with self._open_session().get(url) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
                served = parse_model_list(await resp.read(), time.monotonic())
        except (aiohttp.ClientError, TimeoutError, RuntimeError, ValueError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            if endpoint.attributes.pop(SERVED_MODELS, None) is not None:
                log.info("endpoint %s (%s): model list unreadable (%s)", endpoint.name, url, reason)
            return None
        attach(endpoint, served)
        return served

    async def start(self) -> None:
        """Read every known endpoint's list once (at most `timeout_s`), then poll in the background."""
        endpoints = list(self.store.endpoints())
        if endpoints:
            self._open_session()
            reads = [asyncio.ensure_future(self.refresh(e)) for e in endpoints]
            _, late = await asyncio.wait(reads, timeout=self.config.timeout_s)
            for task in late:
                task.cancel()
        await super().start()

    def refresh_soon(self, address: str) -> None:
        wake = self._wake.get(address)
        if wake is not None:
            wake.set()

    # --- director hooks (RequestObserver): a 404 from a server may mean a lost adapter ---
    def on_routed(self, ctx: RequestContext) -> None:
        return None

    def on_error(self, ctx: RequestContext, error: GatewayError) -> None:
        return None

    def on_complete(self, ctx: RequestContext) -> None:
        if ctx.response_status == 404 and ctx.served is not None:
            self.refresh_soon(ctx.served.address)

    # --- background polling (EndpointPollers) ---
    def tick_s(self) -> float:
        return min(1.0, self.config.interval_s)

    async def poll(self, endpoint: Endpoint) -> None:
        wake = self._wake[endpoint.address] = asyncio.Event()
        try:
            await self._poll_until_cancelled(endpoint, wake)
        finally:
            if self._wake.get(endpoint.address) is wake:
                del self._wake[endpoint.address]

    async def _poll_until_cancelled(self, endpoint: Endpoint, wake: asyncio.Event) -> None:
        cfg = self.config
        served = served_models(endpoint)
        if served is not None:  # read moments ago by `start`: wait out the interval first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), cfg.interval_s - (time.monotonic() - served.fetched_at))
        while True:
            started = time.monotonic()
            wake.clear()
            known = await self.refresh(endpoint) is not None
            # An unreadable list is retried sooner: a restarting server comes back with a new one.
            wait_s = cfg.interval_s if known else min(cfg.interval_s, RETRY_UNKNOWN_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), wait_s)
            gap = cfg.min_refresh_gap_s - (time.monotonic() - started)
            if gap > 0:
                await asyncio.sleep(gap)
