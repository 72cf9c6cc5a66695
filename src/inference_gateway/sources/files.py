"""FileSource: a directory (or file) of YAML manifests as the datastore's source of truth.

The directory is watched; on any change it is parsed again in full and, when valid, swapped in
with `Datastore.replace_all` (which keeps the Endpoint objects, their metrics and in-flight counts
for pods that did not change, so requests in flight are unaffected). An invalid edit is logged and
the last good configuration stays in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

import watchfiles

from inference_gateway.api.errors import ManifestError
from inference_gateway.api.manifests import ResourceSet, load_path
from inference_gateway.datastore.store import Datastore

log = logging.getLogger(__name__)

Transform = Callable[[ResourceSet], ResourceSet]


class FileSource:
    def __init__(
        self,
        store: Datastore,
        path: Path | str,
        *,
        transform: Transform | None = None,
        debounce_ms: int = 50,
        poll_ms: int = 100,
    ) -> None:
        """`transform` may add resources that do not live in the files (e.g. simulated local pods)."""
        self.store = store
        self.path = Path(path)
        self.transform = transform
        self.debounce_ms = debounce_ms
        self.poll_ms = poll_ms
        self.reloads = 0
        self.last_error: ManifestError | None = None
        self._applied: ResourceSet | None = None
        self._stop = asyncio.Event()
        self._watching = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> ResourceSet:
        """Load and apply the manifests, then watch them. Raises ManifestError if they are invalid."""
        resources = load_path(self.path)
        self._stop.clear()
        self._task = asyncio.create_task(self._watch(), name=f"file-source:{self.path}")
        # Load again once the watcher runs, so an edit made in between is not missed.
        await self._watching.wait()
        self._apply(resources)
        self.reload()
        return resources

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def reload(self) -> bool:
        """Parse the files now and apply them if they changed; False when they are invalid."""
        try:
            resources = load_path(self.path)
        except ManifestError as exc:
            self.last_error = exc
            log.error("manifests in %s are invalid; keeping the last good configuration:\n%s", self.path, exc)
            return False
        self.last_error = None
        self._apply(resources)
        return True

    def refresh(self) -> None:
        """Apply the current files again, e.g. because what `transform` adds has changed."""
        if self._applied is not None:
            self._apply(self._applied, force=True)

    def _apply(self, resources: ResourceSet, force: bool = False) -> None:
        if resources == self._applied and not force:
            return
        self._applied = resources
        applied = self.transform(resources) if self.transform else resources
        self.store.replace_all(applied)
        self.reloads += 1
        log.info("applied manifests from %s: %s", self.path, applied.summary())

    async def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                await self._watch_once()
            except Exception as exc:
                # A watcher failure (the directory was replaced, inotify limits, ...) must not take
                # the gateway down: wait a moment and watch again.
                log.warning("watching %s failed (%s); retrying in 1 s", self.path, exc)
                self._watching.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 1.0)

    async def _watch_once(self) -> None:
        target = self.path if self.path.is_dir() else self.path.parent
        only = None if self.path.is_dir() else self.path.resolve()
        async for changes in watchfiles.awatch(
            target,
            stop_event=self._stop,
            debounce=self.debounce_ms,
            step=self.debounce_ms,
            rust_timeout=self.poll_ms,
            yield_on_timeout=True,
            recursive=True,
        ):
            self._watching.set()
            if changes and (only is None or any(Path(p).resolve() == only for _, p in changes)):
                self.reload()
