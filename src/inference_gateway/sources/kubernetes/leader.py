"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go does it.

A candidate takes the Lease when it is free or when the holder has not renewed it for
`lease_duration_s` *as observed locally* (no clock comparison across machines), by an
update carrying the Lease's resourceVersion, so two candidates cannot both win: the loser
gets 409 Conflict. The leader renews every `retry_period_s` and steps down if it could not
renew for `renew_deadline_s`. On `stop()` it releases the Lease so a follower takes over
at its next retry instead of waiting out the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def micro_time(moment: datetime | None = None) -> str:
    """metav1.MicroTime as the API server writes it."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    name: str
    namespace: str
    identity: str = field(default_factory=default_identity)
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0
    release_on_stop: bool = True

    def __post_init__(self) -> None:
        if not self.lease_duration_s > self.renew_deadline_s > self.retry_period_s > 0:
            raise ValueError("need lease_duration_s > renew_deadline_s > retry_period_s > 0")


class LeaderElector:
    def __init__(
        self,
        api: k8s.ApiClient,
        config: LeaseConfig,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        # Any: bodies are plain dicts and responses raw (_preload_content=False).
        self._leases: Any = k8s.CoordinationV1Api(api)
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._observed: tuple[Any, ...] = ()
        self._observed_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.is_leader = False
        self.holder: str | None = None  # who holds the Lease, as last observed

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"leader-election-{self.config.name}")

    async def stop(self) -> None:
        """Stop campaigning; a leader releases the Lease (unless release_on_stop is off)."""
        if self._task is not None:
            # Let an attempt in flight finish, so we know whether we hold the Lease.
            self._stopping.set()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.is_leader:
            self._set_leader(False)
        if self.config.release_on_stop:
            await asyncio.to_thread(self._release)

    # --- loop -------------------------------------------------------------
    async def _run(self) -> None:
        cfg = self.config
        last_renew = time.monotonic()
        while not self._stopping.is_set():
            acquired = await asyncio.to_thread(self._try_acquire_or_renew)
            now = time.monotonic()
            if acquired:
                last_renew = now
                if not self.is_leader:
                    log.info("lease %s/%s: %s became leader", cfg.namespace, cfg.name, cfg.identity)
                    self._set_leader(True)
            elif self.is_leader and (
                self.holder not in (None, cfg.identity) or now - last_renew > cfg.renew_deadline_s
            ):
                log.warning(
                    "lease %s/%s: lost (holder %s); stepping down", cfg.namespace, cfg.name, self.holder
                )
                self._set_leader(False)
            period = (
                cfg.retry_period_s if self.is_leader else cfg.retry_period_s * (1 + 0.2 * random.random())
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), period)

    def _set_leader(self, leader: bool) -> None:
        self.is_leader = leader
        callback = self._on_started if leader else self._on_stopped
        if callback is not None:
            callback()

    # --- one attempt (worker thread) ---------------------------------------
    def _try_acquire_or_renew(self) -> bool:
        cfg = self.config
        try:
            lease = self._read()
            if lease is None:
                return self._create()
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            self.holder = holder or None
            record = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"))
            if record != self._observed:
                self._observed, self._observed_at = record, time.monotonic()
            duration = spec.get("leaseDurationSeconds") or cfg.lease_duration_s
            if holder and holder != cfg.identity and time.monotonic() - self._observed_at < duration:
                return False
            self._update(lease, holder)
            return True
        except ApiException as exc:
            if exc.status != 409:
                log.warning("lease %s/%s: %s %s", cfg.namespace, cfg.name, exc.status, exc.reason)
            return False
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("lease %s/%s: %s", cfg.namespace, cfg.name, exc)
            return False

    def _read(self) -> dict[str, Any] | None:
        cfg = self.config
        try:
            resp = self._leases.read_namespaced_lease(
                cfg.name, cfg.namespace, _preload_content=False, _request_timeout=cfg.renew_deadline_s
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        lease: dict[str, Any] = orjson.loads(resp.data)
        return lease

    def _spec(self, acquire_time: str, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": max(1, round(self.config.lease_duration_s)),
            "acquireTime": acquire_time,
            "renewTime": micro_time(),
            "leaseTransitions": transitions,
        }

    def _create(self) -> bool:
        cfg = self.config
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": cfg.name, "namespace": cfg.namespace},
            "spec": self._spec(micro_time(), 0),
        }
        self._leases.create_namespaced_lease(cfg.namespace, body, _preload_content=False)
        self._observed_at = time.monotonic()
        return True

    def _update(self, lease: dict[str, Any], holder: str) -> None:
        spec = lease.get("spec") or {}
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.config.identity:
            new_spec = self._spec(spec.get("acquireTime") or micro_time(), transitions)
        else:
            new_spec = self._spec(micro_time(), transitions + 1)
        self._put(lease, new_spec)

    def _put(self, lease: dict[str, Any], spec: dict[str, Any]) -> None:
        cfg = self.config
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": cfg.name,
                "namespace": cfg.namespace,
                "resourceVersion": lease["metadata"]["resourceVersion"],
            },
            "spec": spec,
        }
        self._leases.replace_namespaced_lease(
            cfg.name, cfg.namespace, body, _preload_content=False, _request_timeout=cfg.renew_deadline_s
        )

    def _release(self) -> None:
        """Hand the Lease back (holder cleared, 1s duration) so a follower need not wait it out."""
        try:
            lease = self._read()
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.config.identity:
                return
            spec = dict(lease["spec"])
            spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=micro_time())
            self._put(lease, spec)
            log.info(
                "lease %s/%s: released by %s", self.config.namespace, self.config.name, self.config.identity
            )
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("lease %s/%s: release failed: %s", self.config.namespace, self.config.name, exc)
