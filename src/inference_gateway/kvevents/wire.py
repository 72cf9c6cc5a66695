"""vLLM's KV-cache event wire format (`--kv-events-config`, publisher "zmq").

vLLM (vllm/distributed/kv_events.py) sends each batch as a ZMQ multipart message
`[topic, sequence number (8 bytes, big-endian), payload]` on a PUB socket, the payload being a
msgspec-msgpack `KVEventBatch`: `ts`, `events` and `data_parallel_rank`, each event a tagged
struct (`type` = "BlockStored" | "BlockRemoved" | "AllBlocksCleared"). The batch is
`array_like` in every vLLM release (`[ts, events]`, the rank appended when set); current vLLM
encodes the events as maps, releases before it as arrays (the tag first, then the fields in
declaration order). `decode_batch` reads every layout (and map batches); `encode_batch` writes
current vLLM's, which subscribers such as vllm-router require (they reject a map batch).

Block hashes are 64-bit ints (the low 64 bits of vLLM's sha256 block hash, as vLLM sends with
VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=1, its default) or raw digest bytes, which are reduced the
same way so both forms key the same index entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

U64 = (1 << 64) - 1
MEDIUM_GPU = "GPU"

# Field order of the array (legacy) layout, after the tag.
_STORED_FIELDS = (
    "block_hashes",
    "parent_block_hash",
    "token_ids",
    "block_size",
    "lora_id",
    "medium",
    "lora_name",
)
_REMOVED_FIELDS = ("block_hashes", "medium")


class WireError(ValueError):
    """A payload that is not a KV event batch."""


@dataclass(slots=True)
class BlockStored:
    block_hashes: list[int]
    parent_block_hash: int | None
    token_ids: list[int]
    block_size: int
    lora_id: int | None = None
    medium: str | None = MEDIUM_GPU
    lora_name: str | None = None


@dataclass(slots=True)
class BlockRemoved:
    block_hashes: list[int]
    medium: str | None = MEDIUM_GPU


@dataclass(slots=True)
class AllBlocksCleared:
    pass


KVEvent = BlockStored | BlockRemoved | AllBlocksCleared


@dataclass(slots=True)
class EventBatch:
    ts: float
    events: list[KVEvent] = field(default_factory=list)
    data_parallel_rank: int | None = None


def block_hash(value: Any) -> int:
    """An event's block hash as the index keys it: an unsigned 64-bit int."""
    if isinstance(value, bool):
        raise WireError(f"block hash must be an int or bytes, got {value!r}")
    if isinstance(value, int):
        return value & U64
    if isinstance(value, bytes | bytearray):
        return int.from_bytes(value, "big") & U64
    raise WireError(f"block hash must be an int or bytes, got {type(value).__name__}")


def encode_batch(batch: EventBatch) -> bytes:
    out: list[Any] = [batch.ts, [_event_map(e) for e in batch.events]]
    if batch.data_parallel_rank is not None:  # msgspec's omit_defaults drops a None rank
        out.append(batch.data_parallel_rank)
    return msgpack.packb(out)


def _event_map(event: KVEvent) -> dict[str, Any]:
    if isinstance(event, BlockStored):
        return {
            "type": "BlockStored",
            "block_hashes": event.block_hashes,
            "parent_block_hash": event.parent_block_hash,
            "token_ids": event.token_ids,
            "block_size": event.block_size,
            "lora_id": event.lora_id,
            "medium": event.medium,
            "lora_name": event.lora_name,
        }
    if isinstance(event, BlockRemoved):
        return {"type": "BlockRemoved", "block_hashes": event.block_hashes, "medium": event.medium}
    return {"type": "AllBlocksCleared"}


def decode_batch(payload: bytes) -> EventBatch:
    try:
        raw = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise WireError(f"not msgpack: {exc}") from None
    if isinstance(raw, dict):
        ts, events, rank = raw.get("ts"), raw.get("events"), raw.get("data_parallel_rank")
    elif isinstance(raw, list) and len(raw) >= 2:
        ts, events = raw[0], raw[1]
        rank = raw[2] if len(raw) > 2 else None
    else:
        raise WireError("event batch must be a map or an array [ts, events, ...]")
    if not isinstance(ts, int | float) or not isinstance(events, list):
        raise WireError("event batch needs a numeric 'ts' and a list of 'events'")
    return EventBatch(float(ts), [e for e in map(_decode_event, events) if e is not None], _opt_int(rank))


def _decode_event(raw: Any) -> KVEvent | None:
    """One event; None for event types this index does not use (newer vLLM may add some)."""
    if isinstance(raw, list) and raw and isinstance(raw[0], str):
        tag = raw[0]
        names = _STORED_FIELDS if tag == "BlockStored" else _REMOVED_FIELDS
        fields: dict[str, Any] = dict(zip(names, raw[1:], strict=False))
    elif isinstance(raw, dict) and isinstance(raw.get("type"), str):
        tag, fields = raw["type"], raw
    else:
        raise WireError(f"event must be a tagged map or array, got {type(raw).__name__}")
    if tag == "AllBlocksCleared":
        return AllBlocksCleared()
    if tag not in ("BlockStored", "BlockRemoved"):
        return None
    hashes = fields.get("block_hashes")
    if not isinstance(hashes, list):
        raise WireError(f"{tag}.block_hashes must be a list")
    medium = fields.get("medium")
    medium = medium if isinstance(medium, str) else None
    if tag == "BlockRemoved":
        return BlockRemoved([block_hash(h) for h in hashes], medium)
    parent = fields.get("parent_block_hash")
    tokens = fields.get("token_ids") or []
    return BlockStored(
        [block_hash(h) for h in hashes],
        None if parent is None else block_hash(parent),
        _int_list(tokens),
        _opt_int(fields.get("block_size")) or 0,
        _opt_int(fields.get("lora_id")),
        medium,
        fields.get("lora_name") if isinstance(fields.get("lora_name"), str) else None,
    )


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _int_list(values: Sequence[Any]) -> list[int]:
    if not isinstance(values, list) or not all(isinstance(v, int) for v in values):
        raise WireError("BlockStored.token_ids must be a list of ints")
    return values


def frames(topic: str, seq: int, batch: EventBatch) -> list[bytes]:
    """The multipart message vLLM's ZmqEventPublisher sends for one batch."""
    return [topic.encode(), seq.to_bytes(8, "big"), encode_batch(batch)]
