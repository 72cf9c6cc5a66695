"""Workloads: what each benchmark request asks for (model, prompt, output length, criticality).

Every workload is deterministic in its seed. A request carries how to build its prompt
rather than the text itself, so virtual-time runs with millions of requests stay cheap; the
HTTP load generator renders the text when it sends.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from inference_gateway.bench.text import BYTES_PER_TOKEN, count_tokens, synthetic_text, text_of_bytes
from inference_gateway.media import MediaTokenRule
from inference_gateway.scheduling.latency_predictions import TPOT_HEADER, TTFT_HEADER

WorkloadKind = Literal[
    "sharegpt",
    "dataset",
    "shared-prefix",
    "multi-lora",
    "criticality",
    "mixed-slo",
    "long-prompt",
    "multimodal",
]
CRITICALITIES = ("Critical", "Standard", "Sheddable")
PRIORITY = {"Critical": 1, "Standard": 0, "Sheddable": -1}
DEFAULT_MEDIA_RULE = MediaTokenRule()  # Qwen2-VL image sizing, as the EPP and simulator default


class Lengths(BaseModel):
    """A clipped log-normal length distribution given by its median and mean."""

    model_config = ConfigDict(extra="forbid")
    median: float = Field(default=200, gt=0)
    mean: float = Field(default=300, gt=0)
    min: int = Field(default=4, ge=1)
    max: int = Field(default=4000, ge=1)

    @property
    def sigma(self) -> float:
        # mean / median = exp(sigma^2 / 2) for a log-normal
        return math.sqrt(2 * math.log(self.mean / self.median)) if self.mean > self.median else 0.0

    def sample(self, rng: random.Random) -> int:
        value = rng.lognormvariate(math.log(self.median), self.sigma) if self.sigma else self.median
        return int(min(self.max, max(self.min, round(value))))


class SloClass(BaseModel):
    """One class of a mixed-SLO workload: its share of requests, criticality and objectives
    (None: the class carries no such objective). Objectives travel as the headers
    latency-scorer reads (x-slo-ttft-ms / x-slo-tpot-ms, milliseconds)."""

    model_config = ConfigDict(extra="forbid")
    share: float = Field(gt=0)
    criticality: Literal["Critical", "Standard", "Sheddable"] = "Standard"
    ttft_ms: float | None = Field(default=None, gt=0)
    tpot_ms: float | None = Field(default=None, gt=0)

    def headers(self) -> dict[str, str]:
        out = {TTFT_HEADER: f"{self.ttft_ms:g}"} if self.ttft_ms else {}
        return out | ({TPOT_HEADER: f"{self.tpot_ms:g}"} if self.tpot_ms else {})


def _default_slo_classes() -> dict[str, SloClass]:
    return {
        "interactive": SloClass(share=0.3, criticality="Critical", ttft_ms=200, tpot_ms=50),
        "standard": SloClass(share=0.4, ttft_ms=1000),
        "batch": SloClass(share=0.3, criticality="Sheddable"),
    }


class WorkloadSpec(BaseModel):
    """One workload, as written under `workload:` in a scenario YAML."""

    model_config = ConfigDict(extra="forbid")
    kind: WorkloadKind = "sharegpt"
    model: str = "meta-llama/Llama-2-7b-hf"
    prompt: Lengths = Field(default_factory=lambda: Lengths())
    output: Lengths = Field(default_factory=lambda: Lengths(median=150, mean=250, min=4, max=2048))
    max_model_len: int = 4096
    dataset: Path | None = None
    # shared-prefix: `groups` system prompts of `prefix_tokens`, each with `questions` questions
    # sharegpt: with `prefix_share` > 0, that share of requests opens with one of `groups`
    # system prompts of `prefix_tokens` before its ShareGPT-like question
    prefix_share: float = Field(default=0.0, ge=0, le=1)
    groups: int = 8
    questions: int = 16
    prefix_tokens: int = 1024
    question_tokens: int = 128
    # multi-lora: `adapters` adapters named `{adapter_prefix}{i}`, popularity Zipf(`zipf_s`)
    adapters: int = 8
    adapter_prefix: str = "lora-"
    zipf_s: float = 1.1
    # criticality: share of each class, and the model name that carries it
    shares: dict[str, float] = Field(
        default_factory=lambda: {"Critical": 0.2, "Standard": 0.5, "Sheddable": 0.3}
    )
    class_models: dict[str, str] = Field(default_factory=dict)
    # mixed-slo: classes of requests, each with its share, criticality and objectives (sent
    # as x-slo-ttft-ms / x-slo-tpot-ms headers); `class_models` names a class's model as above
    slo_classes: dict[str, SloClass] = Field(default_factory=_default_slo_classes, min_length=1)
    # long-prompt: prompt size in bytes of text
    prompt_bytes: int = 200_000
    # multimodal: one of `images` PNG photos (side `image_pixels`, popularity Zipf(`zipf_s`))
    # plus a question of `question_words` words per chat request
    images: int = 256
    image_pixels: int = 896
    question_words: int = 12


@dataclass(slots=True)
class BenchRequest:
    index: int
    model: str
    prompt_tokens: int
    max_tokens: int
    text_seed: int = 0
    prefix_group: int = -1  # shared-prefix group id; -1: no shared prefix
    prefix_tokens: int = 0
    criticality: str = "Standard"
    group: str = ""  # label for per-group statistics (class, adapter, prefix group)
    text: str | None = None  # explicit prompt text (datasets)
    prompt_bytes: int = 0  # > 0: a synthetic prompt of exactly this many bytes
    headers: dict[str, str] = field(default_factory=dict)
    image: int = -1  # multimodal: index of the photo (catalogue_image) sent before the text
    image_pixels: int = 0

    @property
    def priority(self) -> int:
        return PRIORITY.get(self.criticality, 0)

    def prompt(self) -> str:
        if self.text is not None:
            return self.text
        if self.prompt_bytes:
            return text_of_bytes(self.prompt_bytes, self.text_seed)
        if self.prefix_group < 0:
            return synthetic_text(self.prompt_tokens, self.text_seed)
        prefix = synthetic_text(self.prefix_tokens, 1_000_003 * (self.prefix_group + 1))
        return prefix + synthetic_text(self.prompt_tokens - self.prefix_tokens, self.text_seed)

    def messages(self) -> list[dict[str, Any]]:
        """The request as chat messages: the photo (if any), then the prompt text."""
        content: list[dict[str, Any]] = []
        if self.image >= 0:
            url = catalogue_image(self.image, self.image_pixels)
            content.append({"type": "image_url", "image_url": {"url": url}})
        content.append({"type": "text", "text": self.prompt()})
        return [{"role": "user", "content": content}]

    def body(self, stream: bool = True) -> dict[str, object]:
        body: dict[str, object] = {
            "model": self.model,
            "prompt": self.prompt(),
            "max_tokens": self.max_tokens,
            "ignore_eos": True,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body


@functools.lru_cache(maxsize=4096)
def catalogue_image(index: int, pixels: int) -> str:
    """Photo `index` of the catalogue: a `pixels`-square PNG of one colour, as a data URI."""
    rng = random.Random(index)
    buf = io.BytesIO()
    Image.new("RGB", (pixels, pixels), (rng.randrange(256), rng.randrange(256), index % 256)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@functools.lru_cache(maxsize=16)
def zipf_weights(n: int, s: float) -> list[float]:
    raw = [1.0 / (k**s) for k in range(1, n + 1)]
    total = sum(raw)
    return [w / total for w in raw]


def _output_len(spec: WorkloadSpec, rng: random.Random, prompt_tokens: int) -> int:
    return max(1, min(spec.output.sample(rng), spec.max_model_len - prompt_tokens))


def _prompt_len(spec: WorkloadSpec, rng: random.Random) -> int:
    return min(spec.prompt.sample(rng), spec.max_model_len - 1)


def generate(spec: WorkloadSpec, count: int, seed: int) -> Iterator[BenchRequest]:
    """`count` requests of the workload; the same seed gives the same requests."""
    rng = random.Random(seed)
    if spec.kind == "dataset":
        yield from _dataset(spec, count, rng)
        return
    make = _MAKERS[spec.kind]
    for i in range(count):
        yield make(spec, rng, i)


def _sharegpt(spec: WorkloadSpec, rng: random.Random, i: int) -> BenchRequest:
    if spec.prefix_share and rng.random() < spec.prefix_share:
        return _prefixed_question(spec, rng, i)
    prompt = _prompt_len(spec, rng)
    return BenchRequest(i, spec.model, prompt, _output_len(spec, rng, prompt), text_seed=rng.getrandbits(48))


def _prefixed_question(spec: WorkloadSpec, rng: random.Random, i: int) -> BenchRequest:
    group = rng.randrange(spec.groups)
    prompt = min(spec.prefix_tokens + spec.prompt.sample(rng), spec.max_model_len - 1)
    prefix = min(spec.prefix_tokens, prompt)
    return BenchRequest(
        i,
        spec.model,
        prompt,
        _output_len(spec, rng, prompt),
        text_seed=rng.getrandbits(48),
        prefix_group=group,
        prefix_tokens=prefix,
    )


def _shared_prefix(spec: WorkloadSpec, rng: random.Random, i: int) -> BenchRequest:
    group = rng.randrange(spec.groups)
    question = rng.randrange(spec.questions)
    prompt = spec.prefix_tokens + spec.question_tokens
    return BenchRequest(
        i,
        spec.model,
        prompt,
        _output_len(spec, rng, prompt),
        text_seed=group * 65_537 + question,
        prefix_group=group,
        prefix_tokens=spec.prefix_tokens,
        group=f"prefix-{group}",
    )


def _multi_lora(spec: WorkloadSpec, rng: random.Random, i: int) -> BenchRequest:
    req = _sharegpt(spec, rng, i)
    weights = zipf_weights(spec.adapters, spec.zipf_s)
    adapter = rng.choices(range(spec.adapters), weights=weights)[0]
    req.model = f"{spec.adapter_prefix}{adapter}"
    req.group = req.model
    return req


def _criticality(spec: WorkloadSpec, rng: random.Random, i: int) -> BenchRequest:
    req = _sharegpt(spec, rng, i)
    classes = list(spec.shares)
    label = rng.choices(classes, weights=[spec.shares[c] for c in classes])[0]
    req.criticality = label
    req.model = spec.class_models.get(label, spec.model)
    req.group = label
    return req


def _mixed_slo(spec: WorkloadSpec, rng: random.Random, i: int) -> BenchRequest:
    req = _sharegpt(spec, rng, i)
    names = list(spec.slo_classes)
    label = rng.choices(names, weights=[spec.slo_classes[c].share for c in names])[0]
    slo = spec.slo_classes[label]
    req.criticality = slo.criticality
    req.model = spec.class_models.get(label, spec.model)
    req.group = label
    req.headers = slo.headers()
    return req


def _long_prompt(spec: WorkloadSpec, rng: random.Random, i: int) -> BenchRequest:
    tokens = int(spec.prompt_bytes / BYTES_PER_TOKEN)
    out = spec.output.sample(rng)
    seed = rng.getrandbits(48)
    return BenchRequest(
        i, spec.model, tokens, out, text_seed=seed, group="long", prompt_bytes=spec.prompt_bytes
    )


QUESTION_WORDS = ("price", "size", "colour", "material", "stock", "delivery", "warranty", "reviews")


def _multimodal(spec: WorkloadSpec, rng: random.Random, i: int) -> BenchRequest:
    image = rng.choices(range(spec.images), weights=zipf_weights(spec.images, spec.zipf_s))[0]
    question = " ".join(rng.choice(QUESTION_WORDS) for _ in range(spec.question_words))
    tokens = DEFAULT_MEDIA_RULE.image_cost(spec.image_pixels, spec.image_pixels) + count_tokens(question)
    req = BenchRequest(i, spec.model, tokens, _output_len(spec, rng, tokens), text=question)
    req.image, req.image_pixels = image, spec.image_pixels
    return req


_MAKERS = {
    "sharegpt": _sharegpt,
    "shared-prefix": _shared_prefix,
    "multi-lora": _multi_lora,
    "criticality": _criticality,
    "mixed-slo": _mixed_slo,
    "long-prompt": _long_prompt,
    "multimodal": _multimodal,
}


@dataclass(slots=True)
class Conversation:
    prompt: str
    prompt_tokens: int
    output_tokens: int


def load_sharegpt(path: Path, max_model_len: int = 4096) -> list[Conversation]:
    """First human turn and the reply's length from a ShareGPT JSON (conversations[].value)."""
    data = orjson.loads(path.read_bytes())
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of conversations")
    out: list[Conversation] = []
    for item in data:
        turns = item.get("conversations") if isinstance(item, dict) else None
        if not isinstance(turns, list) or len(turns) < 2:
            continue
        prompt, reply = str(turns[0].get("value", "")), str(turns[1].get("value", ""))
        p, o = count_tokens(prompt), count_tokens(reply)
        if p < 4 or o < 4 or p + o > max_model_len:  # vLLM's benchmark_serving filter
            continue
        out.append(Conversation(prompt, p, o))
    if not out:
        raise ValueError(f"{path}: no usable conversations (need a prompt and a reply of >= 4 tokens)")
    return out


def _dataset(spec: WorkloadSpec, count: int, rng: random.Random) -> Iterator[BenchRequest]:
    if spec.dataset is None:
        raise ValueError("workload kind 'dataset' needs `dataset: path.json`")
    conversations = load_sharegpt(spec.dataset, spec.max_model_len)
    for i in range(count):
        c = conversations[rng.randrange(len(conversations))]
        yield BenchRequest(i, spec.model, c.prompt_tokens, c.output_tokens, text=c.prompt)
