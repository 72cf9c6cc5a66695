"""Multimodal chat content: image and audio parts, their identity and their token cost.

OpenAI chat messages may carry `content` as a list of parts: `{"type": "text", "text"}`,
`{"type": "image_url", "image_url": {"url"}}` (an http(s) URL or a `data:image/...;base64,`
URI) and `{"type": "input_audio", "input_audio": {"data", "format"}}`. The EPP and the
simulator read them the same way:

- identity: a digest of the content (the data URI's payload, or the URL), so a request that
  reuses an image is recognised wherever its encoder output and KV blocks are cached;
- token cost: what the model's processor turns the item into. Images follow Qwen2-VL's
  `smart_resize` (sides rounded to multiples of `patch_pixels`, 28 = 14 px patches merged
  2x2, area clamped to [min_pixels, max_pixels]; tokens = area / patch_pixels^2), or a fixed
  count per image (LLaVA-1.5: 576). Audio costs `audio_tokens_per_second` (Qwen2-Audio: 25).
  Images given by URL (not fetched) count as `default_width` x `default_height`.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import wave
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import xxhash
from PIL import Image, UnidentifiedImageError

MediaKind = Literal["image", "audio"]
CHARS_PER_TOKEN = 4  # the EPP's prompt-length estimate (and the simulator tokenizer's)


@dataclass(frozen=True, slots=True)
class MediaTokenRule:
    """How one model's processor counts tokens for media (defaults: Qwen2-VL / Qwen2-Audio)."""

    image_tokens: int | None = None  # fixed tokens per image (e.g. 576); None: by resolution
    patch_pixels: int = 28
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    default_width: int = 1024
    default_height: int = 1024
    audio_tokens_per_second: float = 25.0

    def image_cost(self, width: int, height: int) -> int:
        if self.image_tokens is not None:
            return self.image_tokens
        if width <= 0 or height <= 0:
            width, height = self.default_width, self.default_height
        f = self.patch_pixels
        h, w = max(f, round(height / f) * f), max(f, round(width / f) * f)
        if h * w > self.max_pixels:
            beta = math.sqrt(height * width / self.max_pixels)
            h, w = max(f, math.floor(height / beta / f) * f), max(f, math.floor(width / beta / f) * f)
        elif h * w < self.min_pixels:
            beta = math.sqrt(self.min_pixels / (height * width))
            h, w = math.ceil(height * beta / f) * f, math.ceil(width * beta / f) * f
        return (h // f) * (w // f)

    def audio_cost(self, seconds: float) -> int:
        return max(1, math.ceil(seconds * self.audio_tokens_per_second))

    @classmethod
    def from_params(cls, params: Mapping[str, Any], where: str) -> MediaTokenRule:
        names = {
            "imageTokens": "image_tokens",
            "patchPixels": "patch_pixels",
            "minPixels": "min_pixels",
            "maxPixels": "max_pixels",
            "defaultWidth": "default_width",
            "defaultHeight": "default_height",
            "audioTokensPerSecond": "audio_tokens_per_second",
        }
        unknown = set(params) - set(names)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{where}: {key} must be a positive number, got {value!r}")
            values[names[key]] = value if key == "audioTokensPerSecond" else int(value)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class MediaItem:
    kind: MediaKind
    digest: int
    width: int = 0  # images: pixels; 0 if unknown (URL)
    height: int = 0
    seconds: float = 0.0  # audio

    def tokens(self, rule: MediaTokenRule) -> int:
        if self.kind == "image":
            return rule.image_cost(self.width, self.height)
        return rule.audio_cost(self.seconds)

    def placeholder(self, rule: MediaTokenRule) -> str:
        """Text standing for the item in the EPP's prompt: unique to its content and as long as
        the text of its token cost would be, so prefix matching weighs it like the engine does."""
        stamp = f"<{self.kind}:{self.digest:016x}>"
        size = self.tokens(rule) * CHARS_PER_TOKEN
        return (stamp * (size // len(stamp) + 1))[:size]


Part = str | MediaItem


def content_parts(content: Any) -> list[Part]:
    """A message's content as text pieces and media items, in order; unknown parts are skipped."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, Iterable) or isinstance(content, bytes | Mapping):
        return []
    parts: list[Part] = []
    for part in content:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "text":
            parts.append(str(part.get("text", "")))
        elif kind == "image_url":
            item = _image(part.get("image_url"))
            if item is not None:
                parts.append(item)
        elif kind == "input_audio":
            item = _audio(part.get("input_audio"))
            if item is not None:
                parts.append(item)
    return parts


def _image(spec: Any) -> MediaItem | None:
    url = spec.get("url") if isinstance(spec, Mapping) else spec
    if not isinstance(url, str) or not url:
        return None
    if not url.startswith("data:"):
        return MediaItem("image", xxhash.xxh3_64_intdigest(url.encode()))
    _, _, payload = url.partition(",")
    width = height = 0
    raw = _b64(payload)
    if raw is not None:
        try:
            with Image.open(io.BytesIO(raw)) as img:  # reads the header only
                width, height = img.size
        except (UnidentifiedImageError, OSError, ValueError):
            pass  # counted at the default size, as a URL is
    return MediaItem("image", xxhash.xxh3_64_intdigest(payload.encode()), width, height)


def _audio(spec: Any) -> MediaItem | None:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("data"), str):
        return None
    data: str = spec["data"]
    raw = _b64(data) or b""
    seconds = 0.0
    if spec.get("format") == "wav":
        try:
            with wave.open(io.BytesIO(raw)) as w:
                seconds = w.getnframes() / max(1, w.getframerate())
        except (wave.Error, EOFError):
            pass
    if seconds <= 0:
        seconds = len(raw) * 8 / 128_000  # compressed audio: assume 128 kbit/s
    return MediaItem("audio", xxhash.xxh3_64_intdigest(data.encode()), seconds=seconds)


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return None


def message_media(messages: Any) -> list[MediaItem]:
    """Every media item of a chat request's messages, in order."""
    if not isinstance(messages, list):
        return []
    return [
        p
        for m in messages
        if isinstance(m, Mapping)
        for p in content_parts(m.get("content"))
        if isinstance(p, MediaItem)
    ]
