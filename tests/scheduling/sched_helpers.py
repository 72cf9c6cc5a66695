"""Builders for scheduling tests: endpoints with given metrics, requests, a pool in a datastore."""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable

from inference_gateway.api.manifests import ResourceSet
from inference_gateway.api.types import (
    Criticality,
    EndpointPickerRef,
    InferenceModel,
    InferencePool,
    ObjectRef,
    Pod,
)
from inference_gateway.datastore.endpoint import Endpoint, EndpointMetrics
from inference_gateway.datastore.store import Datastore
from inference_gateway.scheduling.types import SchedulingRequest

MODEL = "base-model"


def endpoint(
    name: str,
    *,
    waiting: int = 0,
    running: int = 0,
    kv: float = 0.0,
    active: Iterable[str] = (),
    queued_adapters: Iterable[str] = (),
    max_lora: int | None = None,
    block_size: int = 0,
    num_blocks: int = 0,
    port: int = 8000,
    ip: str | None = None,
    age_s: float = 0.0,
) -> Endpoint:
    if ip is None:  # deterministic and distinct per name (str hash() is salted per process)
        h = zlib.crc32(name.encode())
        ip = f"10.{h >> 16 & 0xFF}.{h >> 8 & 0xFF}.{h & 0xFF}"
    return Endpoint(
        f"{name}-rank-0",
        ObjectRef("default", name),
        ip,
        port,
        {},
        metrics=EndpointMetrics(
            waiting_queue=waiting,
            running_requests=running,
            kv_cache_usage=kv,
            active_adapters=frozenset(active),
            waiting_adapters=frozenset(queued_adapters),
            max_active_adapters=max_lora,
            block_size=block_size,
            num_gpu_blocks=num_blocks,
            updated_at=time.monotonic() - age_s,
        ),
    )


def request(
    prompt: str = "",
    *,
    model: str = MODEL,
    headers: dict[str, str] | None = None,
    priority: int = 0,
    request_id: str = "req",
    cache_salt: str = "",
) -> SchedulingRequest:
    crit = (
        Criticality.SHEDDABLE
        if priority < 0
        else Criticality.CRITICAL
        if priority > 0
        else Criticality.STANDARD
    )
    return SchedulingRequest(
        request_id,
        model,
        model,
        prompt=prompt,
        headers=headers or {},
        criticality=crit,
        priority=priority,
        cache_salt=cache_salt,
    )


POOL = ObjectRef("default", "pool")


def pool_store(
    pods: dict[str, str],
    ports: Iterable[int] = (8000,),
    models: Iterable[tuple[str, Criticality]] = ((MODEL, Criticality.STANDARD),),
) -> Datastore:
    """A datastore with one pool selecting app=llm over `pods` (name -> ip); every pod serves
    every port, giving one endpoint per pod x port."""
    store = Datastore()
    resources = ResourceSet(
        pools=[InferencePool(POOL, {"app": "llm"}, tuple(ports), EndpointPickerRef("epp"))],
        models=[
            InferenceModel(ObjectRef("default", f"m-{i}"), name, POOL, criticality=crit)
            for i, (name, crit) in enumerate(models)
        ],
        pods=[Pod(ObjectRef("default", name), ip, {"app": "llm"}) for name, ip in pods.items()],
    )
    store.replace_all(resources)
    return store


def set_metrics(ep: Endpoint, **fields: object) -> None:
    m = ep.metrics
    for key, value in fields.items():
        setattr(m, key, value)
    m.updated_at = time.monotonic()
