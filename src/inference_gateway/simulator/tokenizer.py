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

from inference_gateway.media import MediaTokenRule, content_parts
from inference_gateway.simulator.encoder import MediaSpan

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


def encode_chat(
    messages: Sequence[Mapping[str, Any]],
    tok: SimTokenizer,
    rule: MediaTokenRule,
    add_generation_prompt: bool = True,
) -> tuple[list[int], list[MediaSpan]]:
    """Token ids of a chat whose messages may hold images or audio, and where each item sits.

    Text renders as in render_chat; each media item becomes its token cost in placeholder ids
    derived from its content digest, so block hashes over them identify the item (vLLM mixes
    the item's hash into the hashes of the blocks it covers).
    """
    ids: list[int] = []
    spans: list[MediaSpan] = []
    for m in messages:
        ids += tok.encode(f"<|{m.get('role', 'user')}|>\n")
        for part in content_parts(m.get("content")):
            if isinstance(part, str):
                ids += tok.encode(part)
                continue
            n = part.tokens(rule)
            seed = part.digest & 0xFFFFFFFF
            spans.append((part.digest, len(ids), n))
            ids += [xxhash.xxh32_intdigest(i.to_bytes(4, "little"), seed) % VOCAB_SIZE for i in range(n)]
        ids += tok.encode("</s>\n")
    if add_generation_prompt:
        ids += tok.encode("<|assistant|>\n")
    return ids, spans


def has_media(messages: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        isinstance(p, Mapping) and p.get("type") in ("image_url", "input_audio")
        for m in messages
        if isinstance(m.get("content"), list)
        for p in m["content"]
    )


def output_text(seed: int, start: int, end: int) -> str:
    """Text of output tokens [start, end) of a request whose content seed is `seed`."""
    n = len(_WORDS)
    return "".join(_WORDS[(seed + i) % n] for i in range(start, end))
