"""A ZMQ PUB publisher of KV event batches, as vLLM's ZmqEventPublisher (no replay socket).

Configured like vLLM's `--kv-events-config` JSON: {"enable_kv_cache_events": true,
"publisher": "zmq", "endpoint": "tcp://*:5557", "topic": ""}. An endpoint with a wildcard
host, "::", ipc:// or inproc:// is bound; any other is connected to (vLLM's convention).
A full send queue (high-water mark) drops the batch, as PUB sockets do; subscribers notice
the gap in sequence numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import zmq

from inference_gateway.kvevents.wire import EventBatch, frames

DEFAULT_ENDPOINT = "tcp://*:5557"


@dataclass(frozen=True, slots=True)
class KVEventsConfig:
    enable_kv_cache_events: bool = False
    publisher: str = "null"
    endpoint: str = DEFAULT_ENDPOINT
    topic: str = ""
    hwm: int = 100_000

    @classmethod
    def parse(cls, text: str) -> KVEventsConfig:
        """vLLM's --kv-events-config JSON; a one-line ValueError on bad input."""
        try:
            raw: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--kv-events-config is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError("--kv-events-config must be a JSON object")
        known = {
            "enable_kv_cache_events",
            "publisher",
            "endpoint",
            "topic",
            "hwm",
            "replay_endpoint",
            "buffer_steps",
            "max_queue_size",
        }
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"--kv-events-config: unknown field(s) {', '.join(sorted(unknown))}")
        config = cls(
            enable_kv_cache_events=bool(raw.get("enable_kv_cache_events", False)),
            publisher=str(raw.get("publisher", "zmq" if raw.get("enable_kv_cache_events") else "null")),
            endpoint=str(raw.get("endpoint", DEFAULT_ENDPOINT)),
            topic=str(raw.get("topic", "")),
            hwm=int(raw.get("hwm", 100_000)),
        )
        if config.publisher not in ("zmq", "null"):
            raise ValueError(
                f"--kv-events-config: publisher must be 'zmq' or 'null', got {config.publisher!r}"
            )
        return config

    @property
    def active(self) -> bool:
        return self.enable_kv_cache_events and self.publisher == "zmq"


def _binds(endpoint: str) -> bool:
    return "*" in endpoint or "::" in endpoint or endpoint.startswith(("ipc://", "inproc://"))


class ZmqEventPublisher:
    def __init__(self, config: KVEventsConfig, context: zmq.Context[Any] | None = None) -> None:
        self.config = config
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PUB)
        self._sock.set_hwm(config.hwm)
        self._sock.setsockopt(zmq.LINGER, 0)
        if _binds(config.endpoint):
            self._sock.bind(config.endpoint)
        else:
            self._sock.connect(config.endpoint)
        self._seq = 0
        self.dropped = 0

    @property
    def bound_endpoint(self) -> str:
        """Where it listens (resolves a tcp://*:0 bind to the port the OS picked)."""
        return str(self._sock.getsockopt_string(zmq.LAST_ENDPOINT))

    def publish(self, batch: EventBatch) -> None:
        try:
            self._sock.send_multipart(frames(self.config.topic, self._seq, batch), zmq.NOBLOCK)
        except zmq.Again:
            self.dropped += 1
        self._seq += 1

    def close(self) -> None:
        self._sock.close(linger=0)
