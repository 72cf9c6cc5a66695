"""The tokenizer the EPP uses to turn a prompt into the token ids the engine will cache.

Exact prefix routing needs the engine's own tokenization. Two are available:
- `sim`: the simulator's tokenizer and chat template (inference_gateway.simulator.tokenizer),
  exact for the bundled simulator;
- a path to a Hugging Face `tokenizer.json` (needs the `tokenizers` package, extra `hf`):
  exact for vLLM's /v1/completions, which tokenizes the prompt with special tokens. Chat
  requests would need the model's chat template; they return None, and the precise scorer
  falls back to the approximate index for them.
Only the leading `max_tokens` tokens matter, so long prompts are cut before tokenizing and the
last token of a cut text (which the cut may have split) is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

# Characters per token the cut allows for: generous, so the cut rarely costs whole blocks.
_CHARS_PER_TOKEN_BOUND = 8


class PromptTokenizer(Protocol):
    name: str

    def encode_prompt(self, text: str, max_tokens: int) -> list[int]: ...

    def encode_chat(self, messages: Sequence[Any], max_tokens: int) -> list[int] | None: ...


def _cut(text: str, max_tokens: int) -> tuple[str, bool]:
    limit = max_tokens * _CHARS_PER_TOKEN_BOUND + 64
    return (text[:limit], True) if len(text) > limit else (text, False)


class SimPromptTokenizer:
    name = "sim"

    def __init__(self) -> None:
        try:  # the simulator is the lab extra; the EPP imports it only for this tokenizer
            from inference_gateway.simulator.tokenizer import SimTokenizer, render_chat
        except ImportError as exc:
            raise ValueError(
                "tokenizer 'sim' needs the simulator: pip install 'inference-gateway[sim]'"
            ) from exc
        self._tok = SimTokenizer()
        self._render_chat = render_chat

    def encode_prompt(self, text: str, max_tokens: int) -> list[int]:
        cut, truncated = _cut(text, max_tokens)
        ids = self._tok.encode(cut)
        if truncated and ids:
            ids.pop()
        return ids[:max_tokens]

    def encode_chat(self, messages: Sequence[Any], max_tokens: int) -> list[int] | None:
        return self.encode_prompt(self._render_chat([m for m in messages if isinstance(m, dict)]), max_tokens)


class HFPromptTokenizer:
    """A Hugging Face tokenizer.json, encoded as vLLM's completions endpoint does."""

    def __init__(self, path: str) -> None:
        if not Path(path).is_file():
            raise ValueError(f"tokenizer file {path!r} does not exist")
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ValueError(
                "a tokenizer.json tokenizer needs the 'tokenizers' package "
                "(pip install 'inference-gateway[hf]')"
            ) from None
        self.name = path
        self._tok = Tokenizer.from_file(path)

    def encode_prompt(self, text: str, max_tokens: int) -> list[int]:
        cut, truncated = _cut(text, max_tokens)
        encoding = self._tok.encode(cut, add_special_tokens=True)
        ids = list(encoding.ids)
        if truncated:
            # Drop every token touching the last word of the cut text: a BPE merge can
            # reach back to the previous pre-token boundary.
            boundary = max(cut.rfind(" "), cut.rfind("\n"), 0)
            while ids and encoding.offsets[len(ids) - 1][1] > boundary:
                ids.pop()
        return ids[:max_tokens]

    def encode_chat(self, messages: Sequence[Any], max_tokens: int) -> list[int] | None:
        return None


def load_tokenizer(spec: str) -> PromptTokenizer | None:
    """'' -> None (approximate index only); 'sim'; or a path to a tokenizer.json."""
    if not spec:
        return None
    if spec == "sim":
        return SimPromptTokenizer()
    return HFPromptTokenizer(spec)
