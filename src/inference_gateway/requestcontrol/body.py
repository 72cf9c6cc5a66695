"""Reading what scheduling needs from an OpenAI request body, without copying it twice."""

from __future__ import annotations

from typing import Any

import orjson

from inference_gateway.media import MediaTokenRule, content_parts
from inference_gateway.requestcontrol.errors import GatewayError

DEFAULT_RULE = MediaTokenRule()


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise GatewayError(400, "request body is empty; expected an OpenAI JSON request", "missing_body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "UTF-8" in str(exc) or "surrogates" in str(exc):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                where = f"byte {bad.start}: {raw[bad.start : bad.start + 1]!r}"
                raise GatewayError(
                    400, f"request body is not valid UTF-8 (at {where})", "invalid_json"
                ) from None
        raise GatewayError(400, f"request body is not valid JSON: {exc}", "invalid_json") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "request body must be a JSON object", "invalid_json")
    return body


def requested_model(body: dict[str, Any]) -> str | None:
    """The body's model; None when absent (the pool's default model applies, as in vLLM)."""
    model = body.get("model")
    if model is None or model == "":
        return None
    if not isinstance(model, str):
        raise GatewayError(400, "'model' must be a string", "invalid_model")
    return model


def prompt_text(body: dict[str, Any], media: MediaTokenRule | None = DEFAULT_RULE) -> str:
    """The text the model will see first: used for prefix-cache affinity."""
    return prompt_and_media(body, media)[0]


def prompt_and_media(body: dict[str, Any], media: MediaTokenRule | None = DEFAULT_RULE) -> tuple[str, int]:
    """The prompt text and the tokens its images and audio cost (see inference_gateway.media).

    Each media part appears in the text as a placeholder unique to its content and as long as
    its token cost in characters, so requests reusing an image share a prefix; with `media`
    None, media parts are left out (text-only affinity).
    """
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt, 0
    if isinstance(prompt, list):
        return "".join(p if isinstance(p, str) else str(p) for p in prompt), 0
    messages = body.get("messages")
    if not isinstance(messages, list):
        return "", 0
    parts: list[str] = []
    media_tokens = 0
    for m in messages:
        if isinstance(m, dict):
            parts.append(str(m.get("role", "")))
            text, tokens = _content_text(m.get("content"), media)
            parts.append(text)
            media_tokens += tokens
    return "\n".join(parts), media_tokens


def _content_text(content: Any, media: MediaTokenRule | None) -> tuple[str, int]:
    if isinstance(content, str):
        return content, 0
    pieces: list[str] = []
    tokens = 0
    for part in content_parts(content):
        if isinstance(part, str):
            pieces.append(part)
        elif media is not None:
            pieces.append(part.placeholder(media))
            tokens += part.tokens(media)
    return "".join(pieces), tokens
