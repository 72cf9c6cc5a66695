"""vLLM's prefix-cache block hashes, computed from token ids (vllm/v1/core/kv_cache_utils.py).

hash_i = H((hash_{i-1}, tuple(tokens of block i), extra_keys_i)), with hash_{-1} = NONE_HASH =
H(PYTHONHASHSEED) and H = sha256 (or xxh3-128) of the canonical CBOR encoding
(`--prefix-caching-hash-algo` sha256_cbor, vLLM's default, or xxhash_cbor). extra_keys are
(lora_name,) for LoRA requests, plus the request's cache_salt on block 0; None otherwise.
Events carry the low 64 bits of each hash as an unsigned int.

vLLM draws NONE_HASH at random when PYTHONHASHSEED is unset, so exact routing needs the
engines started with PYTHONHASHSEED and the same value given here as `hashSeed`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import cbor2
import xxhash

U64 = (1 << 64) - 1
MEMO_LIMIT = 200_000


def sha256_cbor(value: Any) -> bytes:
    return hashlib.sha256(cbor2.dumps(value, canonical=True)).digest()


def xxhash_cbor(value: Any) -> bytes:
    return xxhash.xxh3_128_digest(cbor2.dumps(value, canonical=True))


HASH_ALGOS: dict[str, Callable[[Any], bytes]] = {"sha256_cbor": sha256_cbor, "xxhash_cbor": xxhash_cbor}


class VllmBlockHasher:
    def __init__(self, block_size: int, hash_seed: str = "", algo: str = "sha256_cbor") -> None:
        if block_size <= 0:
            raise ValueError("block size must be positive")
        if algo not in HASH_ALGOS:
            raise ValueError(f"hash algorithm must be one of {', '.join(HASH_ALGOS)}, got {algo!r}")
        self.block_size = block_size
        self.algo = algo
        self._fn = HASH_ALGOS[algo]
        self.none_hash = self._fn(hash_seed)
        # (parent digest, block tokens, extra keys) -> digest: shared prefixes hash once.
        self._memo: dict[tuple[bytes, tuple[int, ...], tuple[str, ...] | None], bytes] = {}

    def digests(
        self,
        token_ids: Sequence[int],
        lora_name: str | None = None,
        cache_salt: str | None = None,
        max_blocks: int | None = None,
    ) -> list[bytes]:
        """Full digests of the prompt's full blocks (a trailing partial block is not cached)."""
        bs, fn, memo = self.block_size, self._fn, self._memo
        if len(memo) > MEMO_LIMIT:
            memo.clear()
        count = len(token_ids) // bs
        if max_blocks is not None:
            count = min(count, max_blocks)
        lora_keys: tuple[str, ...] = (lora_name,) if lora_name else ()
        first_keys = lora_keys + ((cache_salt,) if cache_salt else ())
        parent = self.none_hash
        out: list[bytes] = []
        for i in range(count):
            keys = (first_keys if i == 0 else lora_keys) or None
            key = (parent, tuple(token_ids[i * bs : (i + 1) * bs]), keys)
            digest = memo.get(key)
            if digest is None:
                digest = memo[key] = fn(key)
            parent = digest
            out.append(digest)
        return out

    def hashes(
        self,
        token_ids: Sequence[int],
        lora_name: str | None = None,
        cache_salt: str | None = None,
        max_blocks: int | None = None,
    ) -> list[int]:
        """The 64-bit block hashes vLLM's KV events carry for this prompt."""
        return [
            int.from_bytes(d, "big") & U64 for d in self.digests(token_ids, lora_name, cache_salt, max_blocks)
        ]
