"""Deciders: should this request be prefilled on a separate pod, given the decode pick?

As in llm-d, disaggregation pays only when the decode pod would otherwise compute a long
prompt: the KV transfer costs time and the prefill pod's capacity, while a short (or mostly
cached) prompt is cheap to prefill in place.

- `always-disagg-pd-decider`: always.
- `always-disagg-multimodal-decider` (the encode stage's decider): when the chat request has
  an image, video or audio part (llm-d's list: `image_url`, `video_url`, `input_audio`).
- `prefix-based-pd-decider`: when the prompt's non-cached part on the decode endpoint is at
  least `nonCachedTokens` tokens (0: always). Tokens are estimated as 4 characters each and
  the cached part comes from the prefix-cache-scorer's matches in this scheduling cycle
  (`prefixPluginName`, default `prefix-cache-scorer`), so the decode profile must use it for
  cache hits to count.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_int, get_str
from inference_gateway.scheduling.plugins.prefix_cache_scorer import CHARS_PER_TOKEN, PrefixCacheScorer
from inference_gateway.scheduling.registry import PluginHandle
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

DEFAULT_PREFIX_PLUGIN = PrefixCacheScorer.type_name


@runtime_checkable
class PDDecider(Protocol):
    type_name: str
    name: str

    def decide(self, state: CycleState, request: SchedulingRequest, decode: Endpoint) -> bool:
        """True: run the prefill profile (disaggregate); False: the decode endpoint prefills."""
        ...


class AlwaysDisaggPDDecider:
    type_name = "always-disagg-pd-decider"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name

    def decide(self, state: CycleState, request: SchedulingRequest, decode: Endpoint) -> bool:
        return True


MEDIA_PART_TYPES = frozenset({"image_url", "video_url", "input_audio"})


class AlwaysDisaggMultimodalDecider:
    type_name = "always-disagg-multimodal-decider"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name

    def decide(self, state: CycleState, request: SchedulingRequest, decode: Endpoint) -> bool:
        return has_media(request.messages)


def has_media(messages: list[Any] | None) -> bool:
    for message in messages or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(part, dict) and part.get("type") in MEDIA_PART_TYPES for part in content
        ):
            return True
    return False


class PrefixBasedPDDecider:
    """Disaggregate when at least `min_chars` prompt characters are not cached on `decode`."""

    type_name = "prefix-based-pd-decider"

    def __init__(
        self,
        name: str = type_name,
        min_chars: int = 0,
        prefix_plugin: str = DEFAULT_PREFIX_PLUGIN,
        handle: PluginHandle | None = None,
        block_chars: int | None = None,
    ) -> None:
        self.name = name
        self.min_chars = min_chars
        self.prefix_plugin = prefix_plugin
        # Plugins are looked up when deciding, so the scorer may be defined after this one.
        self._handle = handle or PluginHandle()
        self._block_chars = block_chars

    @classmethod
    def from_params(cls, name: str, params: dict[str, Any], handle: PluginHandle) -> PrefixBasedPDDecider:
        tokens = get_int(params, "nonCachedTokens", 0, minimum=0)
        prefix = get_str(params, "prefixPluginName", DEFAULT_PREFIX_PLUGIN)
        return cls(name, tokens * CHARS_PER_TOKEN, prefix, handle)

    def decide(self, state: CycleState, request: SchedulingRequest, decode: Endpoint) -> bool:
        if self.min_chars <= 0:
            return True
        prompt_chars = len(request.prompt)
        if prompt_chars < self.min_chars:
            return False
        return prompt_chars - self.cached_chars(state, decode) >= self.min_chars

    def cached_chars(self, state: CycleState, decode: Endpoint) -> int:
        """Prompt characters the prefix-cache-scorer expects `decode` to hold (0 if unknown)."""
        entry = state.get(self.prefix_plugin)
        if not entry:
            return 0
        _, matches = entry
        blocks = matches.get(decode.address, 0)
        return blocks * self._block_size(decode) if blocks else 0

    def _block_size(self, decode: Endpoint) -> int:
        if self._block_chars:
            return self._block_chars
        scorer = self._handle.plugin(self.prefix_plugin)
        if not isinstance(scorer, PrefixCacheScorer):
            return 0
        # The scorer's own rule: the engine's block size when auto-tuned, else its parameter.
        if scorer.auto_tune and decode.metrics.block_size > 0:
            return decode.metrics.block_size * CHARS_PER_TOKEN
        return scorer.block_size
