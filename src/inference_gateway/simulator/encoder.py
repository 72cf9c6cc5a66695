"""The vision/audio encoder of a multimodal engine, with vLLM's encoder cache.

Before a request's prefill can consume an image's (or audio clip's) placeholder positions,
the encoder turns the item into embeddings. vLLM keeps those outputs in an encoder cache
keyed by the item's content hash and sized in embedding tokens (by default the larger of
max_num_batched_tokens and the biggest item); an entry whose last user finished stays until
space is needed. Positions already covered by prefix-cache hits need no encoding at all.

Here an item costs `encoder_ms_per_1k_tokens` of GPU time (added to the iteration that
admits the request, as a LoRA load is) unless it is in the cache, which is an LRU.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

# (content digest, first placeholder position in the prompt, placeholder tokens)
MediaSpan = tuple[int, int, int]


class EncoderCache:
    def __init__(self, capacity_tokens: int) -> None:
        self.capacity = capacity_tokens
        self.used = 0
        self._entries: OrderedDict[int, int] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.encoded_tokens = 0

    def encode(self, spans: Sequence[MediaSpan], computed: int) -> int:
        """Tokens to run through the encoder for a request whose first `computed` prompt
        tokens are already in the KV cache; cached items are hits and refreshed."""
        todo = 0
        for digest, start, tokens in spans:
            if start + tokens <= computed:
                continue  # its KV is cached: the encoder output is not needed
            if digest in self._entries:
                self._entries.move_to_end(digest)
                self.hits += 1
                continue
            self.misses += 1
            todo += tokens
            self._insert(digest, tokens)
        self.encoded_tokens += todo
        return todo

    def _insert(self, digest: int, tokens: int) -> None:
        if tokens > self.capacity:
            return  # used once, never kept
        while self.used + tokens > self.capacity:
            _, size = self._entries.popitem(last=False)
            self.used -= size
        self._entries[digest] = tokens
        self.used += tokens
