"""Cheap synthetic workloads for the virtual-time fleet.

Requests get ShareGPT-like lengths (log-normal prompts, median ~200 tokens / mean ~300, and
outputs, median ~150 / mean ~250) and Poisson arrivals. Optionally a fraction of requests
starts with one of a few shared prefixes (system prompts, few-shot templates): those
requests carry the real chain hashes of the prefix's full blocks, and the rest of each
prompt is unique, so the engine needs no per-request hashing. With `with_text=True` each
request also carries a prompt text with the same sharing structure, for schedulers that
hash prompts themselves.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from inference_gateway.simulator.config import LengthDistribution
from inference_gateway.simulator.fleet_types import SimRequest
from inference_gateway.simulator.tokenizer import SimTokenizer, block_hashes, output_text

SHAREGPT_PROMPT = LengthDistribution(median=200, sigma=0.9, minimum=4, maximum=4000)
SHAREGPT_OUTPUT = LengthDistribution(median=150, sigma=1.0, minimum=1, maximum=2000)
_TEXT_VARIANTS = 32


@dataclass(frozen=True)
class SharedPrefixes:
    """`groups` distinct prefixes of `tokens` tokens; a request uses one with probability
    `fraction` (group chosen uniformly)."""

    groups: int = 0
    tokens: int = 0
    fraction: float = 0.0


class _TextBank:
    """Slices of pre-rendered output text, so building a prompt text is one slice."""

    def __init__(self, max_tokens: int) -> None:
        self.texts: list[str] = []
        self.ends: list[list[int]] = []
        for v in range(_TEXT_VARIANTS):
            words = [output_text(v, i, i + 1) for i in range(max_tokens)]
            ends = [0]
            for w in words:
                ends.append(ends[-1] + len(w))
            self.texts.append("".join(words))
            self.ends.append(ends)

    def text(self, variant: int, tokens: int) -> str:
        return self.texts[variant][: self.ends[variant][tokens]]


def sharegpt_like(
    qps: float,
    duration_s: float,
    *,
    seed: int = 0,
    prompt: LengthDistribution = SHAREGPT_PROMPT,
    output: LengthDistribution = SHAREGPT_OUTPUT,
    max_model_len: int = 4096,
    prefixes: SharedPrefixes | None = None,
    adapters: Sequence[str] = (),
    adapter_fraction: float = 0.0,
    block_size: int = 16,
    with_text: bool = False,
    start: float = 0.0,
) -> Iterator[SimRequest]:
    """Poisson arrivals at `qps` for `duration_s` seconds of virtual time."""
    rng = random.Random(seed)
    prefixes = prefixes or SharedPrefixes()
    tok = SimTokenizer()
    # The tag keeps groups distinct: output_text alone is a rotation of a small word list.
    group_text = [
        f"[system prompt {g}]{output_text(seed * 7919 + g, 0, prefixes.tokens)}"
        for g in range(prefixes.groups)
    ]
    group_hashes = [tuple(block_hashes(tok.encode(t), block_size)) for t in group_text]
    bank = _TextBank(prompt.maximum) if with_text else None
    t = start
    end = start + duration_s
    rid = 0
    while True:
        t += rng.expovariate(qps)
        if t >= end:
            return
        own = prompt.sample(rng)
        hashes: tuple[int, ...] = ()
        prefix_len, group = 0, -1
        if prefixes.groups and rng.random() < prefixes.fraction:
            group = rng.randrange(prefixes.groups)
            prefix_len, hashes = prefixes.tokens, group_hashes[group]
        plen = min(prefix_len + own, max_model_len - 1)
        out = min(output.sample(rng), max_model_len - plen)
        model = None
        if adapters and rng.random() < adapter_fraction:
            model = adapters[rng.randrange(len(adapters))]
        text = None
        if bank is not None:
            head = group_text[group] if group >= 0 else ""
            text = f"{head} r{rid}:{bank.text(rid % _TEXT_VARIANTS, own)}"
        yield SimRequest(rid, t, plen, out, model, hashes, text)
        rid += 1
