"""The batch wire format and the bounded per-peer queue."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.scheduling.prefix_sync.updates import (
    IndexUpdate,
    MalformedBatch,
    UpdateQueue,
    decode_batch,
    encode_batch,
)

updates_strategy = st.lists(
    st.builds(
        IndexUpdate,
        scorer=st.sampled_from(["prefix-cache-scorer", "prefill-prefix"]),
        endpoint=st.sampled_from(["10.0.0.1:8000", "[fd00::1]:8000"]),
        hashes=st.lists(st.integers(0, 2**64 - 1), max_size=40),
        ts=st.floats(0, 2e9, allow_nan=False),
        capacity=st.one_of(st.none(), st.integers(1, 10**6)),
    ),
    max_size=20,
)


@given(updates_strategy)
def test_batches_round_trip(updates: list[IndexUpdate]) -> None:
    batch = decode_batch(encode_batch("replica-a", updates))
    assert batch.origin == "replica-a"
    assert batch.updates == updates


def test_hashes_travel_as_eight_bytes_each() -> None:
    small = encode_batch("a", [IndexUpdate("s", "e:1", [1], 0.0)])
    large = encode_batch("a", [IndexUpdate("s", "e:1", list(range(257)), 0.0)])
    assert len(large) - len(small) == 8 * 256 + 2  # hashes, plus "257" vs "1" in the header


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01\x00",
        b"\x02" + b"\x02\x00\x00\x00{}",  # unknown version
        b"\x01" + b"\x05\x00\x00\x00not j",
        b"\x01" + b"\x02\x00\x00\x00{}",  # header without fields
    ],
)
def test_malformed_batches_are_rejected(data: bytes) -> None:
    with pytest.raises(MalformedBatch):
        decode_batch(data)


def test_hash_count_must_match_body() -> None:
    data = encode_batch("a", [IndexUpdate("s", "e:1", [1, 2, 3], 0.0)])
    with pytest.raises(MalformedBatch):
        decode_batch(data[:-8])
    with pytest.raises(MalformedBatch):
        decode_batch(data + b"\x00" * 8)


def _update(i: int) -> IndexUpdate:
    return IndexUpdate("s", "e:1", [i], float(i))


def test_queue_drops_oldest_when_full_and_counts() -> None:
    queue = UpdateQueue(limit=3)
    for i in range(5):
        queue.put(_update(i))
    assert queue.dropped == 2
    assert [u.hashes[0] for u in queue.take_now(10)] == [2, 3, 4]


async def test_take_returns_a_full_batch_without_waiting_out_the_linger() -> None:
    queue = UpdateQueue(limit=100)
    queue.put(_update(0))
    taker = asyncio.create_task(queue.take(4, linger_s=60.0))
    await asyncio.sleep(0)
    for i in range(1, 6):
        queue.put(_update(i))
    batch = await asyncio.wait_for(taker, 5.0)
    assert [u.hashes[0] for u in batch] == [0, 1, 2, 3]
    assert len(queue) == 2


async def test_take_waits_for_the_first_update_then_lingers_briefly() -> None:
    queue = UpdateQueue(limit=100)
    taker = asyncio.create_task(queue.take(256, linger_s=0.01))
    await asyncio.sleep(0.02)
    assert not taker.done()
    queue.put(_update(7))
    batch = await asyncio.wait_for(taker, 5.0)
    assert [u.hashes[0] for u in batch] == [7]
