"""Request parsers named by `parser.pluginRef` (upstream's requesthandling parsers).

openai-parser (the default) reads OpenAI-style JSON bodies: model, prompt or messages, stream.
passthrough-parser forwards bodies untouched; the model and objective come from headers.
"""

from __future__ import annotations

from typing import Any


class OpenAIParser:
    type_name = "openai-parser"
    parses_body = True

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name


class PassthroughParser:
    type_name = "passthrough-parser"
    parses_body = False

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name
