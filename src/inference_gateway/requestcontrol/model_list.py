"""`GET /v1/models` through the gateway: the names a client may send, as an OpenAI list.

The public names (InferenceModel model names and rewrite matches) come first-hand from the
datastore; the pods' own lists (base models and loaded adapters, from one ready pod of each
pool) are merged in, so a client sees every name the gateway would route. A pod that does
not answer costs only its names."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp
import orjson

from inference_gateway.api.types import MATCH_ANY_MODEL
from inference_gateway.datastore.store import Datastore, PoolView
from inference_gateway.metrics.inventory import served_models

POD_TIMEOUT_S = 2.0


def is_models_listing(headers: dict[str, str]) -> bool:
    path = headers.get(":path", "").split("?", 1)[0].rstrip("/")
    return headers.get(":method", "").upper() == "GET" and path == "/v1/models"


def public_names(view: PoolView) -> list[str]:
    names = list(view.models)
    names += [name for name in view.rewrites if name != MATCH_ANY_MODEL and name not in names]
    return names


async def models_body(store: Datastore, pool_names: set[str] | None = None) -> bytes:
    """The OpenAI `list` object for the pools (all of them when `pool_names` is None)."""
    views = [v for v in store.pools() if pool_names is None or str(v.pool.ref) in pool_names]
    created = int(time.time())
    entries: dict[str, dict[str, Any]] = {}
    for view in views:
        for name in public_names(view):
            model = view.models.get(name)
            entry = {"id": name, "object": "model", "created": created, "owned_by": "inference-gateway"}
            if model is not None and model.target_models:
                entry["root"] = model.target_models[0].name
            entries.setdefault(name, entry)
    unknown = []
    for view in views:
        known = _inventory(view, created)
        if known is None:
            unknown.append(view)
        for entry in known or ():
            entries.setdefault(str(entry["id"]), entry)
    if unknown:  # no model inventory yet (or not configured): ask a pod of each such pool
        timeout = aiohttp.ClientTimeout(total=POD_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            pod_lists = await asyncio.gather(*(_pod_models(session, v) for v in unknown))
        for listed in pod_lists:
            for entry in listed:
                entries.setdefault(str(entry["id"]), entry)
    return orjson.dumps({"object": "list", "data": list(entries.values())})


def _inventory(view: PoolView, created: int) -> list[dict[str, Any]] | None:
    """The pool's models from the EPP's model inventory (each server's own list); None if unknown."""
    lists = [m for e in view.endpoints if e.ready and (m := served_models(e)) is not None]
    if not lists:
        return None
    entries = [
        {"id": base, "object": "model", "created": created, "owned_by": "vllm", "parent": None}
        for base in sorted({b for m in lists for b in m.base})
    ]
    adapters = {name: parent for m in lists for name, parent in m.adapters.items()}
    entries += [
        {"id": name, "object": "model", "created": created, "owned_by": "vllm", "parent": parent}
        for name, parent in sorted(adapters.items())
    ]
    return entries


async def _pod_models(session: aiohttp.ClientSession, view: PoolView) -> list[dict[str, Any]]:
    for endpoint in [e for e in view.endpoints if e.ready][:2]:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError, ValueError):
            async with session.get(f"http://{endpoint.address}/v1/models") as resp:
                if resp.status == 200:
                    data = orjson.loads(await resp.read()).get("data")
                    return (
                        [d for d in data if isinstance(d, dict) and "id" in d]
                        if isinstance(data, list)
                        else []
                    )
    return []
