"""The EPP's live status page, on its metrics port: `/` (plain HTML that polls) and
`/status.json` (pools, pods and their scraped state, recent decisions with their scores,
queue depths per priority band, recent errors)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.datastore.store import Datastore
from inference_gateway.flowcontrol.controller import FlowController
from inference_gateway.metrics.inventory import served_models
from inference_gateway.requestcontrol.director import RequestContext
from inference_gateway.requestcontrol.errors import GatewayError
from inference_gateway.scheduling.types import SchedulingResult

KEPT = 25  # recent decisions and errors shown


@dataclass
class Decision:
    at: float
    request_id: str
    model: str
    target_model: str
    pool: str
    picked: list[str]
    result: SchedulingResult | None  # scores are read only when the page asks

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": self.at,
            "request_id": self.request_id,
            "model": self.model,
            "target_model": self.target_model,
            "pool": self.pool,
            "picked": self.picked,
        }
        if self.result is not None:
            primary = self.result.profiles.get(self.result.primary_profile)
            if primary is not None:
                ranked = sorted(zip(primary.candidates, primary.totals, strict=False), key=lambda c: -c[1])
                out["scores"] = {e.address: round(total, 4) for e, total in ranked[:5]}
                out["scorers"] = {b.scorer: b.weight for b in primary.breakdown}
        return out


class StatusBoard:
    """A request observer that remembers recent decisions and errors, and serves the page."""

    def __init__(self, store: Datastore, flow: FlowController | None = None) -> None:
        self.store = store
        self.flow = flow
        self.decisions: deque[Decision] = deque(maxlen=KEPT)
        self.errors: deque[dict[str, Any]] = deque(maxlen=KEPT)
        self.routed = 0
        self.failed = 0
        self.started = time.time()

    # RequestObserver
    def on_routed(self, ctx: RequestContext) -> None:
        self.routed += 1
        res = ctx.resolution
        self.decisions.appendleft(
            Decision(
                time.time(),
                ctx.request_id,
                res.model if res else "",
                res.target_model if res else "",
                str(res.view.pool.ref) if res else "",
                [e.address for e in ctx.endpoints],
                ctx.result,
            )
        )

    def on_error(self, ctx: RequestContext, error: GatewayError) -> None:
        self.failed += 1
        entry = {"at": time.time(), "request_id": ctx.request_id, "status": error.status}
        self.errors.appendleft(entry | {"code": error.code, "message": error.message})

    def on_complete(self, ctx: RequestContext) -> None:
        return None

    def snapshot(self) -> dict[str, Any]:
        now = time.time()
        return {
            "now": now,
            "uptime_s": round(now - self.started, 1),
            "requests": {"routed": self.routed, "failed": self.failed},
            "pools": [self._pool(v) for v in self.store.pools()],
            "queues": self.flow.band_depths() if self.flow is not None else {},
            "decisions": [d.view() for d in self.decisions],
            "errors": list(self.errors),
        }

    def _pool(self, view: Any) -> dict[str, Any]:
        return {
            "name": str(view.pool.ref),
            "failure_mode": view.pool.endpoint_picker.failure_mode.value,
            "models": sorted(view.models),
            "endpoints": [_endpoint(e) for e in view.endpoints],
        }

    def routes(self) -> list[tuple[str, Any]]:
        return [("/", self._page), ("/status.json", self._json)]

    async def _page(self, request: web.Request) -> web.Response:
        html = resources.files("inference_gateway.observability").joinpath("status.html").read_text()
        return web.Response(text=html, content_type="text/html")

    async def _json(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.snapshot()), content_type="application/json")


def _endpoint(e: Endpoint) -> dict[str, Any]:
    m = e.metrics
    age = time.monotonic() - m.updated_at if m.updated_at else None
    return {
        "name": e.name,
        "pod": str(e.pod),
        "address": e.address,
        "ready": e.ready,
        "waiting": m.waiting_queue,
        "running": m.running_requests,
        "kv_cache": round(m.kv_cache_usage, 4),
        "adapters": sorted(m.active_adapters),
        "served": _served(e),
        "scraped_ago_s": round(age, 2) if age is not None else None,
        "scrape_failures": m.scrape_failures,
    }


def _served(e: Endpoint) -> list[str] | None:
    """The server's own model list (base models and loaded adapters); None until it is read."""
    served = served_models(e)
    return None if served is None else sorted(served.base | served.adapters.keys())
