"""media-token-estimator: how each model counts image and audio tokens (multimodal requests).

Not a scheduling step: the director reads it when it turns a chat request into the prompt
that prefix affinity hashes and into `SchedulingRequest.media_tokens`. Without this plugin
the defaults of inference_gateway.media apply to every model (Qwen2-VL image sizing, 25 audio
tokens per second, media hashed into the prompt).

Parameters:
  default: a rule for models not listed (fields below)
  models: {model name: rule}; the name is the target model the server sees
  hashMedia: false leaves media out of the prompt (text-only prefix affinity; default true)
Rule fields: imageTokens (fixed per image, e.g. 576 for LLaVA-1.5), patchPixels (28),
  minPixels (3136), maxPixels (1003520), defaultWidth / defaultHeight (1024, for URLs),
  audioTokensPerSecond (25)
"""

from __future__ import annotations

from typing import Any

from inference_gateway.media import MediaTokenRule
from inference_gateway.scheduling.params import get_bool


class MediaTokenEstimator:
    type_name = "media-token-estimator"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        unknown = set(params) - {"default", "models", "hashMedia"}
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))}")
        self.name = name
        self.hash_media = get_bool(params, "hashMedia", True)
        self.default = MediaTokenRule.from_params(_mapping(params.get("default"), "default"), "default")
        models = _mapping(params.get("models"), "models")
        self.models = {
            str(model): MediaTokenRule.from_params(_mapping(rule, f"models.{model}"), f"models.{model}")
            for model, rule in models.items()
        }

    def rule_for(self, model: str) -> MediaTokenRule | None:
        """The model's rule; None when media should stay out of the prompt."""
        if not self.hash_media:
            return None
        return self.models.get(model, self.default)


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"parameter {key!r} must be a mapping, got {value!r}")
    return value
