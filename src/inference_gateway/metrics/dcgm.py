"""GPU metrics from NVIDIA dcgm-exporter, attached to endpoints as attributes.

dcgm-exporter runs one per node (a DaemonSet) and, with its Kubernetes pod mapping on, labels
each GPU's series with the `pod` and `namespace` using it (`exported_pod` /
`exported_namespace` when a Prometheus relabelled them). `DcgmSource` scrapes the configured
exporters every interval, groups GPUs by pod (a tensor-parallel pod has several) and sets
these attributes on every endpoint of that pod:

  dcgm.gpu-util          mean DCGM_FI_DEV_GPU_UTIL over the pod's GPUs, as 0..1
  dcgm.gr-engine-active  mean DCGM_FI_PROF_GR_ENGINE_ACTIVE (0..1), if profiling fields are on
  dcgm.fb-used-mib       sum of DCGM_FI_DEV_FB_USED
  dcgm.fb-free-mib       sum of DCGM_FI_DEV_FB_FREE
  dcgm.gpus              number of GPUs seen
  dcgm.updated-at        time.monotonic() of the scrape
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.datastore.store import Datastore
from inference_gateway.metrics.parse import parse_families

log = logging.getLogger(__name__)

GPU_UTIL = "dcgm.gpu-util"
GR_ENGINE_ACTIVE = "dcgm.gr-engine-active"
FB_USED_MIB = "dcgm.fb-used-mib"
FB_FREE_MIB = "dcgm.fb-free-mib"
GPUS = "dcgm.gpus"
UPDATED_AT = "dcgm.updated-at"

_MEAN = {"DCGM_FI_DEV_GPU_UTIL": (GPU_UTIL, 0.01), "DCGM_FI_PROF_GR_ENGINE_ACTIVE": (GR_ENGINE_ACTIVE, 1.0)}
_SUM = {"DCGM_FI_DEV_FB_USED": FB_USED_MIB, "DCGM_FI_DEV_FB_FREE": FB_FREE_MIB}
PodKey = tuple[str, str]  # (namespace, pod)


def pod_gpu_stats(text: str) -> dict[PodKey, dict[str, float]]:
    """Per pod, the attributes above (without the timestamp) from one exporter page."""
    families = parse_families(text, [*_MEAN, *_SUM])
    per_pod: dict[PodKey, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    gpus: dict[PodKey, set[str]] = defaultdict(set)
    for family, samples in families.items():
        for sample in samples:
            labels = sample.labels
            pod = labels.get("pod") or labels.get("exported_pod")
            if not pod:
                continue  # a GPU no pod holds
            key = (labels.get("namespace") or labels.get("exported_namespace") or "default", pod)
            gpus[key].add(labels.get("UUID") or labels.get("gpu") or "0")
            per_pod[key][family].append(sample.value)
    out: dict[PodKey, dict[str, float]] = {}
    for key, values in per_pod.items():
        stats: dict[str, float] = {GPUS: float(len(gpus[key]))}
        for family, (attr, scale) in _MEAN.items():
            if values.get(family):
                stats[attr] = scale * sum(values[family]) / len(values[family])
        for family, attr in _SUM.items():
            if values.get(family):
                stats[attr] = sum(values[family])
        out[key] = stats
    return out


@dataclass
class DcgmConfig:
    exporters: list[str] = field(default_factory=list)  # full URLs of per-node exporters
    endpoint_path: str = ""  # also scrape http://<endpoint address><path> (sidecar exporters)
    interval_s: float = 1.0
    timeout_s: float = 1.0


class DcgmSource:
    def __init__(self, store: Datastore, config: DcgmConfig) -> None:
        self.store = store
        self.config = config
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.failures = 0

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._task = asyncio.create_task(self._run(), name="dcgm-source")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            await self.scrape_once()
            await asyncio.sleep(self.config.interval_s)

    def urls(self) -> list[str]:
        urls = list(self.config.exporters)
        if self.config.endpoint_path:
            urls += [f"http://{e.address}{self.config.endpoint_path}" for e in self.store.endpoints()]
        return urls

    async def scrape_once(self) -> int:
        """Scrape every exporter once and update the endpoints; returns how many got GPU data."""
        pages = await asyncio.gather(*(self._fetch(url) for url in self.urls()))
        merged: dict[PodKey, dict[str, float]] = {}
        for page in pages:
            if page is not None:
                merged.update(pod_gpu_stats(page))
        return self._apply(merged, time.monotonic())

    async def _fetch(self, url: str) -> str | None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout_s))
        try:
            async with self._session.get(url) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
                return await resp.text()
        except (aiohttp.ClientError, TimeoutError, RuntimeError, UnicodeDecodeError) as exc:
            self.failures += 1
            log.debug("dcgm exporter %s: %s", url, exc)
            return None

    def _apply(self, merged: dict[PodKey, dict[str, float]], now: float) -> int:
        updated = 0
        for endpoint in self.store.endpoints():
            stats = merged.get((endpoint.pod.namespace, endpoint.pod.name))
            if stats is not None:
                endpoint.attributes.update(stats)
                endpoint.attributes[UPDATED_AT] = now
                updated += 1
        return updated


def fresh_gpu_value(endpoint: Endpoint, key: str, max_age_s: float, now: float) -> Any:
    """The attribute if the endpoint's DCGM data is younger than max_age_s, else None."""
    attrs = endpoint.attributes
    at = attrs.get(UPDATED_AT)
    if at is None or now - at > max_age_s:
        return None
    return attrs.get(key)
