"""Synthetic prompt text whose token count is known in advance.

The simulated model servers count a token per run of at most 4 non-space characters with
its leading whitespace (~4 characters per token, like BPE on English), so a word of 1-4
letters after a space is exactly one token. Texts are deterministic in their seed, so two
requests that share a seed share a prefix byte for byte (and hit the prefix cache).
"""

from __future__ import annotations

import random

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _vocabulary(size: int = 4096) -> tuple[str, ...]:
    rng = random.Random(7)
    words = {" " + "".join(rng.choices(_LETTERS, k=rng.randint(2, 4))) for _ in range(size * 2)}
    return tuple(sorted(words))[:size]


VOCABULARY = _vocabulary()
BYTES_PER_TOKEN = sum(map(len, VOCABULARY)) / len(VOCABULARY)


def synthetic_text(tokens: int, seed: int) -> str:
    """`tokens` one-token words drawn from a fixed vocabulary by a seeded generator."""
    if tokens <= 0:
        return ""
    return "".join(random.Random(seed).choices(VOCABULARY, k=tokens))


def count_tokens(text: str) -> int:
    """The simulators' token count of `text` (pieces of <= 4 non-space characters)."""
    count = 0
    for word in text.split():
        count += (len(word) + 3) // 4
    return count


def text_of_bytes(size: int, seed: int) -> str:
    """Synthetic text of exactly `size` bytes (ASCII), BYTES_PER_TOKEN bytes per token."""
    text = synthetic_text(size // 3 + 1, seed)
    return text[:size]
