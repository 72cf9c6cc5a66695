"""One polling task per endpoint, kept in step with the datastore: the shape every per-pod
data producer (metrics scraper, model inventory) shares.

A supervisor task reconciles the tasks with the datastore every tick: an endpoint that
appears gets its own task (so one slow or black-holed pod never delays the others), one that
goes away, or is replaced by a new Endpoint at the same address, has its task cancelled.
Subclasses say how to poll one endpoint (`poll`), how to open the HTTP session, and what to
do on each supervisor tick.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.datastore.store import Datastore


class EndpointPollers:
    name = "poller"  # prefix of the asyncio task names

    def __init__(self, store: Datastore) -> None:
        self.store = store
        self._session: aiohttp.ClientSession | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._pollers: dict[str, tuple[Endpoint, asyncio.Task[None]]] = {}

    # --- what a subclass provides ---------------------------------------------
    async def poll(self, endpoint: Endpoint) -> None:
        """Poll one endpoint until cancelled."""
        raise NotImplementedError

    def new_session(self) -> aiohttp.ClientSession:
        raise NotImplementedError

    def tick_s(self) -> float:
        """Seconds between supervisor ticks."""
        raise NotImplementedError

    def on_tick(self) -> None:
        """Called on every supervisor tick, after the pollers were reconciled."""

    # --- lifecycle --------------------------------------------------------------
    async def start(self) -> None:
        self._open_session()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"{self.name}-supervisor")

    async def stop(self) -> None:
        tasks = [t for _, t in self._pollers.values()]
        if self._supervisor is not None:
            tasks.append(self._supervisor)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._pollers.clear()
        self._supervisor = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self.new_session()
        return self._session

    async def _supervise(self) -> None:
        while True:
            self._reconcile()
            self.on_tick()
            await asyncio.sleep(self.tick_s())

    def _reconcile(self) -> None:
        current = {e.address: e for e in self.store.endpoints()}
        for address, (endpoint, task) in list(self._pollers.items()):
            if current.get(address) is not endpoint:
                task.cancel()
                del self._pollers[address]
        for address, endpoint in current.items():
            if address not in self._pollers:
                task = asyncio.create_task(self.poll(endpoint), name=f"{self.name}-{address}")
                self._pollers[address] = (endpoint, task)
