"""List-then-watch one collection with the official client, in a worker thread.

The sync client blocks, so each Reflector owns a thread; every result is handed to the
event loop with `call_soon_threadsafe`, in order, so the datastore is only touched there.

Recovery follows client-go's reflector: a dropped or timed-out watch resumes from the last
resourceVersion seen (events or bookmarks); 410 Gone means the history is gone, so it lists
again and delivers a fresh snapshot; a 404 on list means the CRD is not installed, which
counts as an empty collection and is retried slowly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.watch import Watch

from inference_gateway.sources.kubernetes.client import Lister

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SnapshotHandler = Callable[[list[Obj]], None]
EventHandler = Callable[[str, Obj], None]


@dataclass(frozen=True, slots=True)
class ReflectorTimings:
    watch_timeout_s: int = 300
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 30.0
    missing_retry_s: float = 30.0
    request_timeout_s: float = 30.0
    page_size: int = 500


class Reflector:
    def __init__(
        self,
        name: str,
        lister: Lister,
        on_snapshot: SnapshotHandler,
        on_event: EventHandler,
        loop: asyncio.AbstractEventLoop,
        timings: ReflectorTimings | None = None,
    ) -> None:
        self.name = name
        self._lister = lister
        self._on_snapshot = on_snapshot
        self._on_event = on_event
        self._loop = loop
        self.timings = timings or ReflectorTimings()
        self._stopped = threading.Event()
        self._watch: Watch | None = None
        self._thread: threading.Thread | None = None
        self._backoff = self.timings.backoff_initial_s
        self.lists = 0  # how many times it listed (initial + relists), for diagnostics

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"reflector-{self.name}", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stopped.set()
        watch = self._watch
        if watch is not None:
            watch.stop()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)

    # --- worker thread ------------------------------------------------------
    def _run(self) -> None:
        missing = False
        while not self._stopped.is_set():
            try:
                items, rv = self._list()
                missing = False
                self._deliver(self._on_snapshot, items)
                self._watch_from(rv)
            except ApiException as exc:
                if exc.status in (403, 404):
                    # Not served (CRD not installed) or not allowed (RBAC, e.g. upstream's chart
                    # grants no HTTPRoutes): say so once, go on without it, look again later.
                    if not missing:
                        why = (
                            "not allowed (RBAC: forbidden)"
                            if exc.status == 403
                            else "not served (CRD not installed?)"
                        )
                        log.warning("%s: %s; skipping it, retrying later", self.name, why)
                        self._deliver(self._on_snapshot, [])
                    missing = True
                    self._stopped.wait(self.timings.missing_retry_s)
                else:
                    log.warning("%s: list failed: %s %s", self.name, exc.status, exc.reason)
                    self._sleep_backoff()
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                log.warning("%s: list failed: %s", self.name, exc)
                self._sleep_backoff()

    def _list(self) -> tuple[list[Obj], str]:
        items: list[Obj] = []
        cont: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": self.timings.page_size, "_preload_content": False}
            if cont:
                kwargs["_continue"] = cont
            resp = self._lister(**kwargs, _request_timeout=self.timings.request_timeout_s)
            body = orjson.loads(resp.data)
            items += body.get("items") or []
            meta = body.get("metadata") or {}
            cont = meta.get("continue")
            if not cont:
                self.lists += 1
                return items, str(meta.get("resourceVersion", ""))

    def _watch_from(self, rv: str) -> None:
        """Watch until 410 Gone (return: relist) or stop; resume after dropped connections."""
        t = self.timings
        while not self._stopped.is_set():
            self._watch = Watch(return_type="object")
            try:
                stream = self._watch.stream(
                    self._lister,
                    resource_version=rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=t.watch_timeout_s,
                    _request_timeout=(t.request_timeout_s, t.watch_timeout_s + t.request_timeout_s),
                )
                for event in stream:
                    rv = self._handle(event, rv)
                    if self._stopped.is_set():
                        return
                self._backoff = t.backoff_initial_s
            except ApiException as exc:
                if exc.status == 410:
                    log.info("%s: watch expired at resourceVersion %s (410 Gone); relisting", self.name, rv)
                    return
                raise
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                if self._stopped.is_set():
                    return
                log.info("%s: watch dropped (%s); resuming from resourceVersion %s", self.name, exc, rv)
                self._sleep_backoff()
            finally:
                self._watch = None

    def _handle(self, event: dict[str, Any], rv: str) -> str:
        obj = event.get("raw_object") or {}
        kind = event.get("type")
        new_rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._deliver(self._on_event, kind, obj)
            self._backoff = self.timings.backoff_initial_s
        return str(new_rv)

    def _deliver(self, handler: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(handler, *args)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self._stopped.set()

    def _sleep_backoff(self) -> None:
        self._stopped.wait(self._backoff)
        self._backoff = min(self._backoff * 2, self.timings.backoff_max_s)
