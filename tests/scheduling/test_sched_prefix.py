"""Prompt hashing, the prefix index, and prefix-cache-scorer."""

from __future__ import annotations

import pytest
from sched_helpers import endpoint, request
from xxhash import xxh64_intdigest

from inference_gateway.scheduling.plugins.prefix_cache_scorer import PrefixCacheScorer
from inference_gateway.scheduling.prefix_index import PrefixIndex, hash_prompt
from inference_gateway.scheduling.types import CycleState

BLOCK = "x" * 63 + "\n"  # one 64-character block


def test_hash_chain_is_seeded_by_model_and_chained() -> None:
    prompt = "a" * 64 + "b" * 64
    hashes = hash_prompt(prompt, "m", 64, 256)
    seed = xxh64_intdigest(b"m")
    first = xxh64_intdigest(b"a" * 64, seed)
    assert hashes == [first, xxh64_intdigest(b"b" * 64, first)]


def test_shared_prefix_gives_shared_leading_hashes() -> None:
    common = "system prompt " * 20
    one = hash_prompt(common + "question one", "m", 64, 256)
    two = hash_prompt(common + "a different question entirely", "m", 64, 256)
    shared = len(common) // 64
    assert one[:shared] == two[:shared]
    assert hash_prompt(common, "other-model", 64, 256)[0] != one[0]
    assert hash_prompt(common, "m", 64, 256, salt="tenant-a")[0] != one[0]


def test_partial_block_ignored_and_input_truncated() -> None:
    assert hash_prompt("short", "m", 64, 256) == []
    assert len(hash_prompt("y" * 130, "m", 64, 256)) == 2
    huge = "z" * (220 * 1024)
    assert len(hash_prompt(huge, "m", 64, 256)) == 256
    assert len(hash_prompt(huge, "m", 64, 10)) == 10


def test_hashing_uses_utf8_bytes() -> None:
    prompt = "é" * 64  # 128 bytes -> two blocks
    assert len(hash_prompt(prompt, "m", 64, 256)) == 2


def test_index_match_counts_leading_blocks_per_server() -> None:
    index = PrefixIndex(100)
    index.add([1, 2, 3], "a")
    index.add([1, 2], "b")
    assert index.match([1, 2, 3, 4]) == {"a": 3, "b": 2}
    assert index.match([9, 1, 2]) == {}


def test_index_lru_evicts_oldest_blocks_per_server() -> None:
    index = PrefixIndex(3)
    index.add([1, 2, 3], "a")
    index.add([4], "a")  # evicts 1
    assert index.size("a") == 3
    assert index.match([1, 2]) == {}
    assert index.match([2, 3, 4]) == {"a": 3}
    index.add([2], "a")  # refresh 2, so 3 is now the oldest
    index.add([5], "a")
    assert index.match([3]) == {}
    assert index.match([2]) == {"a": 1}


def test_index_per_server_capacity_and_removal() -> None:
    index = PrefixIndex(100)
    index.add([1, 2, 3, 4], "small", capacity=2)
    assert index.size("small") == 2
    index.add([1, 2], "b")
    index.retain({"b"})
    assert index.servers() == ["b"]
    assert index.match([1, 2]) == {"b": 2}


def test_prefix_scorer_scores_matched_fraction_after_pick() -> None:
    scorer = PrefixCacheScorer()
    a, b = endpoint("a"), endpoint("b")
    first = request(BLOCK * 4)
    state = CycleState()
    assert scorer.score(state, first, [a, b]) == [0.0, 0.0]
    scorer.on_picked(state, first, a)

    half = request(BLOCK * 2 + "y" * 128)
    scores = scorer.score(CycleState(), half, [a, b])
    assert scores == pytest.approx([0.5, 0.0])
    assert scorer.score(CycleState(), request(BLOCK * 4), [a, b]) == [1.0, 0.0]
    assert scorer.score(CycleState(), request(BLOCK * 4, model="other"), [a, b]) == [0.0, 0.0]


def test_prefix_scorer_auto_tunes_block_size_from_engine() -> None:
    scorer = PrefixCacheScorer()
    eng = endpoint("a", block_size=32)  # 32 tokens x 4 chars = 128-character blocks
    state = CycleState()
    scorer.score(state, request("q" * 256), [eng])
    assert len(state[scorer.name][0]) == 2
    fixed = PrefixCacheScorer(parameters={"autoTune": False, "hashBlockSize": 32})
    state = CycleState()
    fixed.score(state, request("q" * 256), [eng])
    assert len(state[fixed.name][0]) == 8


def test_prefix_scorer_forgets_removed_endpoints() -> None:
    scorer = PrefixCacheScorer()
    a = endpoint("a")
    state = CycleState()
    scorer.score(state, request(BLOCK * 2), [a])
    scorer.on_picked(state, request(BLOCK * 2), a)
    scorer.endpoints_changed(set())
    assert scorer.score(CycleState(), request(BLOCK * 2), [a]) == [0.0]


def test_prefix_scorer_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="blockSize"):
        PrefixCacheScorer(parameters={"blockSize": "big"})
    with pytest.raises(ValueError, match="lruCapacityPerServer"):
        PrefixCacheScorer(parameters={"lruCapacityPerServer": 0})


def test_index_match_stops_at_each_servers_first_missing_block() -> None:
    index = PrefixIndex(100)
    index.add([1, 3, 4], "gap")  # lacks block 2: only block 1 is a usable prefix
    index.add([1, 2, 3, 4], "full")
    index.add([2, 3, 4], "tail")  # holds later blocks but not the first
    assert index.match([1, 2, 3, 4]) == {"gap": 1, "full": 4}


def test_index_match_after_eviction_of_a_middle_block() -> None:
    index = PrefixIndex(3)
    index.add([1, 2, 3], "a")
    index.add([1, 3], "a")  # refresh 1 and 3, so 2 is the oldest
    index.add([9], "a")  # evicts 2
    assert index.match([1, 2, 3]) == {"a": 1}


def test_index_reuses_slots_of_removed_servers() -> None:
    index = PrefixIndex(10)
    for i in range(5):
        index.add([1, 2], f"s{i}")
    index.remove_server("s1")
    index.remove_server("s3")
    index.add([1], "new")
    assert index.match([1, 2]) == {"s0": 2, "s2": 2, "s4": 2, "new": 1}
    assert sorted(index.servers()) == ["new", "s0", "s2", "s4"]
