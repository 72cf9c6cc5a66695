"""prefix-cache-scorer: send requests that share a prompt prefix to the endpoint that has it cached.

score = matched leading blocks / prompt blocks. The index is updated with the prompt's blocks
once the request is bound to an endpoint (post-pick), so the next request with the same
prefix finds it there. Parameters as upstream (its approx-prefix-cache-producer's): blockSizeTokens
(16; hashed as 4 characters per token), maxPrefixBlocksToMatch (256), maxPrefixTokensToMatch
(0 = unset; when set it wins: blocks = tokens / block size), lruCapacityPerServer (31250),
autoTune (true: block size = engine block size, LRU capacity = engine GPU blocks, when the
engine reports them). Our older `blockSize` (alias hashBlockSize, in characters) is still read
when blockSizeTokens is absent; upstream ignores it.

`listeners` hear about every index addition made after a pick (prefix_sync uses this to
share the index between EPP replicas); additions made by calling `index.add` directly, as
prefix_sync does for its peers' updates, are not reported, so shared updates never loop.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.interfaces import IndexListener
from inference_gateway.scheduling.params import get_bool, get_int
from inference_gateway.scheduling.prefix_index import PrefixIndex, hash_prompt
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

DEFAULT_BLOCK_SIZE_TOKENS = 16
DEFAULT_BLOCK_SIZE = 64  # characters: 16 tokens x 4
DEFAULT_MAX_BLOCKS = 256
DEFAULT_LRU_CAPACITY = 31250
CHARS_PER_TOKEN = 4


class PrefixCacheScorer:
    type_name = "prefix-cache-scorer"
    affinity = True  # where the request's state is, not load (interfaces.AffinityScorer)

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = dict(parameters or {})
        if "blockSize" not in params and "hashBlockSize" in params:
            params["blockSize"] = params["hashBlockSize"]
        self.name = name
        self.auto_tune = get_bool(params, "autoTune", True)
        if "blockSizeTokens" in params:
            tokens = get_int(params, "blockSizeTokens", DEFAULT_BLOCK_SIZE_TOKENS, minimum=1)
            self.block_size = tokens * CHARS_PER_TOKEN
        else:
            self.block_size = get_int(params, "blockSize", DEFAULT_BLOCK_SIZE, minimum=1)
        self.max_blocks = get_int(params, "maxPrefixBlocksToMatch", DEFAULT_MAX_BLOCKS, minimum=1)
        self.max_tokens = get_int(params, "maxPrefixTokensToMatch", 0, minimum=0)
        capacity = get_int(params, "lruCapacityPerServer", DEFAULT_LRU_CAPACITY, minimum=1)
        self.index = PrefixIndex(capacity)
        # Running totals for the prefix_indexer_hit_ratio metric.
        self.blocks_looked_up = 0
        self.blocks_matched = 0
        self.listeners: list[IndexListener] = []
        # (matched characters, prompt characters) of each pick: the prefix_indexer_hit_* metrics.
        self.hit_observers: list[Callable[[int, int], None]] = []

    def match(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> tuple[list[int], dict[str, int]]:
        """The prompt's block hashes and, per endpoint address, how many leading blocks it holds.
        Computed once per scheduling cycle; filters and other scorers read the same result."""
        cached = state.get(self.name)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        block_size = self._block_size(endpoints)
        max_blocks = self.max_blocks
        if self.max_tokens:
            max_blocks = self.max_tokens * CHARS_PER_TOKEN // block_size
        hashes = hash_prompt(request.prompt, request.target_model, block_size, max_blocks, request.cache_salt)
        matches = self.index.match(hashes) if hashes else {}
        state[self.name] = (hashes, matches)
        self.blocks_looked_up += len(hashes)
        if matches:
            self.blocks_matched += max(matches.values())
        return hashes, matches

    def match_ratio(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        """Matched leading blocks over prompt blocks, per endpoint (upstream's PrefixCacheMatchInfo)."""
        hashes, matches = self.match(state, request, endpoints)
        if not matches:
            return [0.0] * len(endpoints)
        get = matches.get
        total = float(len(hashes))
        return [get(e.address, 0) / total for e in endpoints]

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        return self.match_ratio(state, request, endpoints)

    def on_picked(self, state: CycleState, request: SchedulingRequest, endpoint: Endpoint) -> None:
        entry = state.get(self.name)
        if not entry or not entry[0]:
            return
        if self.hit_observers:
            chars = self._block_size([endpoint])
            matched = entry[1].get(endpoint.address, 0)
            for observe in self.hit_observers:
                observe(matched * chars, len(entry[0]) * chars)
        capacity = (endpoint.metrics.num_gpu_blocks if self.auto_tune else 0) or None
        self.index.add(entry[0], endpoint.address, capacity)
        for listener in self.listeners:
            listener(endpoint.address, entry[0], capacity)

    # --- SharedPrefixIndex (prefix sync and the EPP's metrics) -----------------------
    def subscribe(self, listener: IndexListener) -> None:
        self.listeners.append(listener)

    def unsubscribe(self, listener: IndexListener) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)

    def add_from_peer(self, hashes: list[int], endpoint: str, capacity: int | None) -> None:
        self.index.add(hashes, endpoint, capacity)

    def index_size(self) -> int:
        return self.index.size()

    def observe_hits(self, observer: Callable[[int, int], None]) -> None:
        self.hit_observers.append(observer)

    def endpoints_changed(self, addresses: Collection[str]) -> None:
        self.index.retain(addresses)

    def _block_size(self, endpoints: Sequence[Endpoint]) -> int:
        # All endpoints of a pool run the same engine config, so the first one speaks for all.
        if self.auto_tune and endpoints:
            engine_block = endpoints[0].metrics.block_size
            if engine_block > 0:
                return engine_block * CHARS_PER_TOKEN
        return self.block_size
