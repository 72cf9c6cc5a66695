"""The block pool: prefix reuse, reference counting and LRU eviction order."""

from __future__ import annotations

from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.kv_cache import BlockPool

from .helpers import run_one_server, text_request, words


def _fill(pool: BlockPool, hashes: list[int], anonymous: int = 0) -> None:
    """Simulate one request computing these blocks, then finishing."""
    pool.allocate(len(hashes) + anonymous)
    held = [h for h in hashes if pool.register(h)]
    pool.release(anonymous + len(hashes) - len(held), held)


def test_finished_blocks_stay_cached_until_evicted_in_lru_order() -> None:
    pool = BlockPool(6)
    _fill(pool, [11, 12])  # oldest
    _fill(pool, [21, 22])
    assert pool.num_free == 6 and pool.num_cached == 4
    assert pool.lookup([11, 12, 13], limit=10) == (2, 2)
    pool.allocate(2)  # never-used blocks go first
    assert pool.num_cached == 4
    pool.allocate(2)  # then the least recently freed: request 1's tail, then its head
    assert pool.lookup([11], 10) == (0, 0)
    assert pool.lookup([21, 22], 10) == (2, 2)


def test_acquiring_a_free_cached_block_takes_it_out_of_the_free_pool() -> None:
    pool = BlockPool(4)
    _fill(pool, [1, 2])
    pool.acquire([1, 2])
    assert pool.num_free == 2
    pool.allocate(2)  # only the two uncached blocks are left to hand out
    assert pool.lookup([1, 2], 10) == (2, 0)
    pool.release(0, [1, 2])
    assert pool.num_free == 2


def test_duplicate_concurrent_block_stays_anonymous() -> None:
    pool = BlockPool(4)
    pool.allocate(2)
    assert pool.register(7) is True
    assert pool.register(7) is False  # a second request computed the same block meanwhile
    pool.release(1, [])  # the duplicate is freed as an anonymous block
    pool.release(0, [7])
    assert pool.num_free == 4 and pool.num_cached == 1


def test_recently_used_prefix_survives_churn_that_evicts_an_old_one() -> None:
    old, hot = words(320, seed=1), words(320, seed=2)
    reqs = [text_request("old", 0.0, old, 2), text_request("hot0", 0.1, hot, 2)]
    # unique requests churn through the cache; the hot prefix is reused all along
    for i in range(12):
        reqs.append(text_request(f"u{i}", 0.2 + i * 0.1, words(320, seed=100 + i), 2))
        reqs.append(text_request(f"hot{i + 1}", 0.25 + i * 0.1, hot, 2))
    reqs.append(text_request("old-again", 2.0, old, 2))
    res, _ = run_one_server(reqs, ServerConfig(num_gpu_blocks=100))
    assert res["hot12"].cached_tokens == 304
    assert res["old-again"].cached_tokens == 0
