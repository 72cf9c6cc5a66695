"""llm-d's global socket mode (`kvEventsConfig.zmqEndpoint`): the EPP binds one ZMQ SUB socket
and every pod's vLLM publisher connects to it (vLLM connects when its `--kv-events-config`
endpoint names a host, e.g. `tcp://epp:5557`).

Pods name themselves in the topic, as llm-d deploys them: `kv@<pod>@<model>`, where `<pod>` is
the pod IP (`${POD_IP}`) or, here also, an endpoint's `ip:port`. An IP applies the batch to
every endpoint of that pod in the pool; topics naming no current endpoint are counted and
dropped. Sequence numbers are checked per topic as in the per-pod subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from typing import Any

import zmq
import zmq.asyncio

from inference_gateway.kvevents.index import KVBlockIndex
from inference_gateway.kvevents.subscriber import BatchReader, pod_host

log = logging.getLogger(__name__)


def topic_pod(topic: bytes) -> str | None:
    """'kv@10.0.0.7@Qwen/Qwen3-8B' -> '10.0.0.7'; None for any other shape."""
    parts = topic.decode(errors="replace").split("@")
    return parts[1] if len(parts) >= 3 and parts[1] else None


class GlobalKVEventSubscriber(BatchReader):
    def __init__(self, index: KVBlockIndex, endpoint: str, topic_filter: str = "") -> None:
        super().__init__()
        self.index = index
        self.endpoint = endpoint
        self.topic_filter = topic_filter
        self._ctx: zmq.asyncio.Context | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: Any = None
        self._wanted: set[str] = set()
        self.unknown_pods = 0

    @property
    def running(self) -> bool:
        return self._ctx is not None

    @property
    def bound_endpoint(self) -> str:
        """Where it listens (a tcp://...:0 bind resolved to the port the OS picked)."""
        return str(self._sock.getsockopt_string(zmq.LAST_ENDPOINT)) if self._sock is not None else ""

    async def start(self) -> None:
        if self._ctx is not None:
            return
        self._ctx = zmq.asyncio.Context()
        sock: Any = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt_string(zmq.SUBSCRIBE, self.topic_filter)
        try:
            sock.bind(self.endpoint)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            self._ctx.term()
            self._ctx = None
            raise ValueError(f"kvEventsConfig.zmqEndpoint {self.endpoint!r}: cannot bind: {exc}") from None
        self._sock = sock
        self._task = asyncio.get_running_loop().create_task(self._listen(), name="kv-events global")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def set_pods(self, addresses: Collection[str]) -> None:
        self._wanted = set(addresses)
        self.index.retain(self._wanted)

    def targets(self, pod: str) -> list[str]:
        if pod in self._wanted:
            return [pod]
        return [a for a in self._wanted if pod_host(a) == pod]

    async def _listen(self) -> None:
        while True:
            self._on_message(await self._sock.recv_multipart())

    def _on_message(self, parts: list[bytes]) -> None:
        if not self._well_formed(parts):
            return
        pod = topic_pod(parts[0])
        targets = self.targets(pod) if pod else []
        if not pod or not targets:
            self.unknown_pods += 1
            return
        if (batch := self._decode(parts, pod)) is None:
            return
        restarted = self._advance(parts[0], parts, pod)
        for address in targets:
            if restarted:
                self.index.reset_pod(address)
            self.index.apply(address, batch)
        self.batches += 1
