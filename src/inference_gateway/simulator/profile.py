"""Model/hardware performance profiles: step time of one engine iteration, loaded from YAML.

A profile gives the forward time of an iteration as a function of the number of tokens it
processes (prefill chunk tokens + one per decoding sequence), as (tokens, ms) points joined
piecewise-linearly and extended linearly past both ends, plus an attention term linear in
the KV context the batch attends to, and LoRA costs. See docs/simulator.md for the format.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

_PACKAGE_PROFILES = "profiles"


@dataclass(frozen=True, slots=True)
class ModelProfile:
    name: str
    description: str
    forward_points: tuple[tuple[int, float], ...]
    attention_ms_per_10k_tokens: float
    lora_overhead_frac: float = 0.1
    lora_load_ms: float = 20.0
    num_gpu_blocks: int = 7000
    block_size: int = 16
    max_model_len: int = 4096
    # KV-cache bytes per token, for P/D transfer times. Llama-2-7B fp16:
    # 2 (K and V) x 32 layers x 4096 hidden x 2 bytes = 512 KiB.
    kv_bytes_per_token: int = 524_288
    # Multimodal: encoder (ViT / audio tower) GPU time per 1000 embedding tokens it produces.
    encoder_ms_per_1k_tokens: float = 15.0
    # Encoder output per embedding token, for E/P/D transfers: hidden size x 2 bytes (bf16).
    embedding_bytes_per_token: int = 8192

    def forward_ms(self, tokens: int) -> float:
        """Non-attention forward time of an iteration that processes `tokens` tokens."""
        xs = [p[0] for p in self.forward_points]
        pts = self.forward_points
        i = bisect.bisect_left(xs, tokens)
        lo, hi = (0, 1) if i == 0 else ((i - 1, i) if i < len(pts) else (-2, -1))
        (x0, y0), (x1, y1) = pts[lo], pts[hi]
        return y0 + (y1 - y0) * (tokens - x0) / (x1 - x0)

    def step_seconds(self, tokens: int, context_tokens: int, lora_in_batch: bool) -> float:
        """Duration of one iteration in seconds (model time)."""
        ms = self.forward_ms(tokens)
        if lora_in_batch:
            ms *= 1.0 + self.lora_overhead_frac
        ms += self.attention_ms_per_10k_tokens * context_tokens / 10_000.0
        return ms / 1000.0


def _from_mapping(data: dict[str, Any], source: str) -> ModelProfile:
    try:
        raw_points = data["forward_ms"]
        points = tuple(sorted((int(t), float(ms)) for t, ms in raw_points))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"profile {source}: 'forward_ms' must be a list of [tokens, ms]") from exc
    if len(points) < 2 or len({p[0] for p in points}) != len(points):
        raise ValueError(f"profile {source}: need >= 2 forward_ms points with distinct tokens")
    return ModelProfile(
        name=str(data.get("name", source)),
        description=str(data.get("description", "")),
        forward_points=points,
        attention_ms_per_10k_tokens=float(data.get("attention_ms_per_10k_tokens", 0.0)),
        lora_overhead_frac=float(data.get("lora_overhead_frac", 0.1)),
        lora_load_ms=float(data.get("lora_load_ms", 20.0)),
        num_gpu_blocks=int(data.get("num_gpu_blocks", 7000)),
        block_size=int(data.get("block_size", 16)),
        max_model_len=int(data.get("max_model_len", 4096)),
        kv_bytes_per_token=int(data.get("kv_bytes_per_token", 524_288)),
        encoder_ms_per_1k_tokens=float(data.get("encoder_ms_per_1k_tokens", 15.0)),
        embedding_bytes_per_token=int(data.get("embedding_bytes_per_token", 8192)),
    )


def list_profiles() -> list[str]:
    """Names of the profiles shipped with the package."""
    folder = resources.files(__package__).joinpath(_PACKAGE_PROFILES)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_profile(name_or_path: str | Path) -> ModelProfile:
    """Load a shipped profile by name, or any profile YAML by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        text = path.read_text()
        source = str(path)
    else:
        res = resources.files(__package__).joinpath(_PACKAGE_PROFILES).joinpath(f"{name_or_path}.yaml")
        if not res.is_file():
            known = ", ".join(list_profiles())
            raise ValueError(f"unknown profile {name_or_path!r} (known: {known})")
        text = res.read_text()
        source = str(name_or_path)
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"profile {source}: expected a mapping")
    return _from_mapping(data, source)
