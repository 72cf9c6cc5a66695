"""KV-event wire format, vLLM block hashing, the exact index, and the simulator's events."""

from __future__ import annotations

import hashlib

import cbor2
import msgpack
import pytest

from inference_gateway.kvevents.hashing import VllmBlockHasher
from inference_gateway.kvevents.index import KVBlockIndex
from inference_gateway.kvevents.wire import (
    AllBlocksCleared,
    BlockRemoved,
    BlockStored,
    EventBatch,
    WireError,
    decode_batch,
    encode_batch,
)
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.engine import Engine
from inference_gateway.simulator.kv_events import KVEventLog
from inference_gateway.simulator.profile import load_profile

U64 = (1 << 64) - 1


def test_batch_round_trips_in_current_vllm_layout() -> None:
    batch = EventBatch(
        1700000000.5,
        [
            BlockStored([1, 2], None, list(range(32)), 16, lora_name="a"),
            BlockRemoved([1]),
            AllBlocksCleared(),
        ],
        data_parallel_rank=0,
    )
    raw = msgpack.unpackb(encode_batch(batch))
    # vLLM's EventBatch is array_like: [ts, events, rank]; its events are tagged maps.
    assert raw[0] == 1700000000.5 and raw[2] == 0
    assert raw[1][0]["type"] == "BlockStored" and raw[1][0]["block_hashes"] == [1, 2]
    assert raw[1][2] == {"type": "AllBlocksCleared"}
    assert decode_batch(encode_batch(batch)) == batch
    assert len(msgpack.unpackb(encode_batch(EventBatch(1.0, [])))) == 2  # no rank: omitted


def test_decodes_the_legacy_array_layout_and_digest_hashes() -> None:
    digest = hashlib.sha256(b"x").digest()
    legacy = [
        1.0,
        [
            ["BlockStored", [7, digest], None, [1, 2, 3, 4, 5, 6, 7, 8], 4, None, "GPU"],
            ["BlockRemoved", [7], "GPU"],
            ["AllBlocksCleared"],
            ["BlockMigrated", [9], "peer"],  # a type this index does not know is skipped
        ],
        0,
    ]
    batch = decode_batch(msgpack.packb(legacy))
    stored = batch.events[0]
    assert isinstance(stored, BlockStored)
    assert stored.block_hashes == [7, int.from_bytes(digest, "big") & U64]
    assert stored.token_ids == [1, 2, 3, 4, 5, 6, 7, 8] and stored.block_size == 4
    assert isinstance(batch.events[1], BlockRemoved) and isinstance(batch.events[2], AllBlocksCleared)
    assert len(batch.events) == 3 and batch.data_parallel_rank == 0


@pytest.mark.parametrize(
    "payload",
    [b"\xc1", msgpack.packb("text"), msgpack.packb({"ts": 1.0, "events": [{"type": "BlockStored"}]})],
)
def test_malformed_payloads_raise_wire_error(payload: bytes) -> None:
    with pytest.raises(WireError):
        decode_batch(payload)


def test_block_hashes_follow_vllm_sha256_cbor_chain() -> None:
    hasher = VllmBlockHasher(4, "0")
    tokens = list(range(10))  # two full blocks, a partial one ignored
    none_hash = hashlib.sha256(cbor2.dumps("0", canonical=True)).digest()
    first = hashlib.sha256(cbor2.dumps((none_hash, (0, 1, 2, 3), None), canonical=True)).digest()
    second = hashlib.sha256(cbor2.dumps((first, (4, 5, 6, 7), None), canonical=True)).digest()
    assert hasher.digests(tokens) == [first, second]
    assert hasher.hashes(tokens) == [int.from_bytes(d, "big") & U64 for d in (first, second)]


def test_lora_name_keys_every_block_and_cache_salt_only_the_first() -> None:
    hasher = VllmBlockHasher(4, "0")
    tokens = list(range(8))
    salted = hasher.digests(tokens, cache_salt="s")
    first = hashlib.sha256(cbor2.dumps((hasher.none_hash, (0, 1, 2, 3), ("s",)), canonical=True)).digest()
    assert salted[0] == first
    assert salted[1] == hashlib.sha256(cbor2.dumps((first, (4, 5, 6, 7), None), canonical=True)).digest()
    lora = hasher.digests(tokens, lora_name="ad", cache_salt="s")
    assert (
        lora[0]
        == hashlib.sha256(cbor2.dumps((hasher.none_hash, (0, 1, 2, 3), ("ad", "s")), canonical=True)).digest()
    )
    assert lora[1] == hashlib.sha256(cbor2.dumps((lora[0], (4, 5, 6, 7), ("ad",)), canonical=True)).digest()
    assert VllmBlockHasher(4, "1").hashes(tokens) != hasher.hashes(tokens)  # the seed matters


def test_index_counts_copies_ignores_other_media_and_clears() -> None:
    index = KVBlockIndex()
    index.apply("a", EventBatch(0, [BlockStored([1, 2, 3], None, [], 4), BlockStored([1], None, [], 4)]))
    index.apply("a", EventBatch(0, [BlockStored([4], 3, [], 4, medium="CPU")]))
    assert index.match([1, 2, 3, 4], now=0) == {"a": 3}
    index.apply("a", EventBatch(0, [BlockRemoved([1])]))  # one of two copies of block 1
    assert index.match([1, 2], now=0) == {"a": 2}
    index.apply("a", EventBatch(0, [BlockRemoved([1])]))
    assert index.match([1, 2], now=0) == {}
    index.apply("a", EventBatch(0, [AllBlocksCleared()]))
    assert index.match([2], now=0) == {} and index.has_pod("a")
    index.retain(set())
    assert not index.has_pod("a")


def _engine(num_blocks: int) -> Engine:
    profile = load_profile("h100-llama2-7b")
    config = ServerConfig(
        num_gpu_blocks=num_blocks, block_size=4, max_num_seqs=4, max_num_batched_tokens=64, max_model_len=24
    )
    engine = Engine(config.resolve(profile), profile)
    engine.publish_kv_events(KVEventLog(4))
    return engine


def _run(engine: Engine, start: float) -> None:
    t = start
    while engine.has_work():
        plan = engine.begin_step(t)
        if plan is None:
            break
        engine.finish_step()
        t = plan.end


def test_engine_publishes_stored_blocks_and_evictions() -> None:
    engine = _engine(num_blocks=6)
    hasher = VllmBlockHasher(4, "0")
    tokens = list(range(100, 113))  # 3 full blocks + 1 token
    engine.add_request("r1", 13, 1, 0.0, block_hashes=hasher.hashes(tokens), token_ids=tokens)
    _run(engine, 0.0)
    log = engine.kv_events
    assert log is not None
    batch = log.take(1.0)
    assert batch is not None
    stored = [e for e in batch.events if isinstance(e, BlockStored)]
    assert [h for e in stored for h in e.block_hashes] == hasher.hashes(tokens)
    assert stored[0].parent_block_hash is None
    assert [t for e in stored for t in e.token_ids] == tokens[:12]
    # A different 5-block prompt needs the cached blocks' space: they are evicted.
    other = list(range(500, 521))
    engine.add_request("r2", 21, 1, 1.0, block_hashes=hasher.hashes(other), token_ids=other)
    _run(engine, 1.0)
    after = log.take(2.0)
    assert after is not None
    removed = [h for e in after.events if isinstance(e, BlockRemoved) for h in e.block_hashes]
    assert set(removed) <= set(hasher.hashes(tokens)) and removed
