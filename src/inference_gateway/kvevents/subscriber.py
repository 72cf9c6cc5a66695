"""Per-pod ZMQ subscriptions to model servers' KV events, feeding a KVBlockIndex.

One SUB socket per pod, connected to tcp://<pod ip>:<port> (vLLM's publisher binds
tcp://*:<port> on each pod; with `port_offset`, the port is the pod's serving port plus the
offset, for several pods on one host), subscribed to `topic_filter` (a prefix of the topic; "" takes
all). Sequence numbers are checked: a gap means lost batches (counted; the index may then
miss some blocks until they are stored or removed again), and a number going backwards
means the publisher restarted, so the pod's entries are dropped before the new ones apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Hashable
from typing import Any

import zmq
import zmq.asyncio

from inference_gateway.kvevents.index import KVBlockIndex
from inference_gateway.kvevents.wire import EventBatch, WireError, decode_batch

log = logging.getLogger(__name__)


def pod_host(address: str) -> str:
    """'10.0.0.7:8000' -> '10.0.0.7'; '[fd00::7]:8000' -> 'fd00::7'."""
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return host.strip("[]")


class BatchReader:
    """What both subscriber modes do with a ZMQ message: check its frames, decode the batch and
    follow the publisher's sequence numbers (counting bad payloads and lost batches)."""

    def __init__(self) -> None:
        self._last_seq: dict[Hashable, int] = {}
        self.batches = 0
        self.gaps = 0
        self.bad_payloads = 0

    def _well_formed(self, parts: list[bytes]) -> bool:
        """[topic, 8-byte sequence number, payload]."""
        if len(parts) != 3 or len(parts[1]) != 8:
            self.bad_payloads += 1
            return False
        return True

    def _decode(self, parts: list[bytes], source: str) -> EventBatch | None:
        try:
            return decode_batch(parts[2])
        except WireError as exc:
            self.bad_payloads += 1
            log.warning("KV events from %s: bad payload (%s)", source, exc)
            return None

    def _advance(self, key: Hashable, parts: list[bytes], source: str) -> bool:
        """Record the batch's sequence number under `key`; True when the publisher restarted."""
        seq = int.from_bytes(parts[1], "big", signed=True)
        last = self._last_seq.get(key)
        self._last_seq[key] = seq
        if last is not None and seq <= last:
            return True
        if last is not None and seq > last + 1:
            self.gaps += 1
            log.warning("KV events from %s: %d batch(es) lost", source, seq - last - 1)
        return False


class KVEventSubscriber(BatchReader):
    def __init__(
        self, index: KVBlockIndex, port: int, topic_filter: str = "", port_offset: int | None = None
    ) -> None:
        super().__init__()
        self.index = index
        self.port = port
        self.port_offset = port_offset
        self.topic_filter = topic_filter
        self._ctx: zmq.asyncio.Context | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wanted: set[str] = set()

    @property
    def running(self) -> bool:
        return self._ctx is not None

    async def start(self) -> None:
        if self._ctx is None:
            self._ctx = zmq.asyncio.Context()
            self._sync()

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def set_pods(self, addresses: Collection[str]) -> None:
        """Subscribe to every pod in `addresses` (endpoint ip:port) and to no other."""
        self._wanted = set(addresses)
        self.index.retain(self._wanted)
        if self._ctx is not None:
            self._sync()

    def _sync(self) -> None:
        for address in [a for a in self._tasks if a not in self._wanted]:
            self._tasks.pop(address).cancel()
            self._last_seq.pop(address, None)
        for address in self._wanted - set(self._tasks):
            self._tasks[address] = asyncio.get_running_loop().create_task(
                self._listen(address), name=f"kv-events {address}"
            )

    def url_of(self, address: str) -> str:
        """The pod's publisher: its host at `port`, or at its serving port + `port_offset`."""
        host = pod_host(address)
        port = self.port
        if self.port_offset is not None:
            port = int(address.rsplit(":", 1)[1]) + self.port_offset
        return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"

    async def _listen(self, address: str) -> None:
        assert self._ctx is not None
        sock: Any = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt_string(zmq.SUBSCRIBE, self.topic_filter)
        sock.connect(self.url_of(address))
        try:
            while True:
                parts = await sock.recv_multipart()
                self._on_message(address, parts)
        finally:
            sock.close(linger=0)

    def _on_message(self, address: str, parts: list[bytes]) -> None:
        if not self._well_formed(parts) or (batch := self._decode(parts, address)) is None:
            return
        if self._advance(address, parts, address):
            self.index.reset_pod(address)  # the publisher restarted
        self.index.apply(address, batch)
        self.batches += 1
