"""A deterministic, cheap stand-in tokenizer, prefix block hashing and output text.

Tokens are pieces of at most 4 non-space characters with their leading whitespace
(~4 characters per token on English text); ids come from hashing the piece, so the same
text always yields the same ids and real prompts produce real prefix-cache hits.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import xxhash

_PIECE = re.compile(r"\s*\S{1,4}|\s+")
_CACHE_LIMIT = 200_000
VOCAB_SIZE = 32_000

# Output "words": each renders as exactly one token of the tokenizer above.
_WORDS = (
    " the",
    " of",
    " and",
    " to",
    " in",
    " is",
    " it",
    " that",
    " for",
    " on",
    " as",
    " with",
    " was",
    " are",
    " be",
    " this",
    " by",
    " at",
    " from",
    " or",
    " an",
    " we",
    " can",
    " sim",
    " data",
    " time",
    " load",
    " node",
    " pod",
    " gpu",
    " will",
    " has",
)


class SimTokenizer:
    """Maps text to stable token ids; keeps a bounded piece -> id cache."""

    def __init__(self, vocab_size: int = VOCAB_SIZE) -> None:
        self._vocab = vocab_size
        self._ids: dict[str, int] = {}

    def encode(self, text: str) -> list[int]:
        ids = self._ids
        if len(ids) > _CACHE_LIMIT:
            ids.clear()
        out: list[int] = []
        for piece in _PIECE.findall(text):
            tid = ids.get(piece)
            if tid is None:
                tid = xxhash.xxh32_intdigest(piece.encode()) % self._vocab
                ids[piece] = tid
            out.append(tid)
        return out

    def count(self, text: str) -> int:
        return len(_PIECE.findall(text))


def block_hashes(token_ids: Sequence[int], block_size: int) -> list[int]:
    """Hashes of the full blocks of a prompt, chained like vLLM: h_i = H(h_{i-1}, tokens_i)."""
    hashes: list[int] = []
    parent = 0
    full = len(token_ids) - len(token_ids) % block_size
    for start in range(0, full, block_size):
        payload = parent.to_bytes(8, "little") + array("q", token_ids[start : start + block_size]).tobytes()
        parent = xxhash.xxh3_64_intdigest(payload)
        hashes.append(parent)
    return hashes


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
        return "".join(parts)
    return "" if content is None else str(content)


def render_chat(messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True) -> str:
    """A fixed chat template; concatenative, so a conversation's turns share a prefix."""
    rendered = [f"<|{m.get('role', 'user')}|>\n{_content_text(m.get('content'))}</s>\n" for m in messages]
    if add_generation_prompt:
        rendered.append("<|assistant|>\n")
    return "".join(rendered)


def output_text(seed: int, start: int, end: int) -> str:
    """Text of output tokens [start, end) of a request whose content seed is `seed`."""
    n = len(_WORDS)
    return "".join(_WORDS[(seed + i) % n] for i in range(start, end))
