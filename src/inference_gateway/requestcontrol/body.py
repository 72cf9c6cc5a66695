"""Reading what scheduling needs from an OpenAI request body, without copying it twice."""

from __future__ import annotations

from typing import Any

import orjson

from inference_gateway.requestcontrol.errors import GatewayError


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise GatewayError(400, "request body is empty; expected an OpenAI JSON request", "missing_body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
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


def prompt_text(body: dict[str, Any]) -> str:
    """The text the model will see first: used for prefix-cache affinity."""
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return "".join(p if isinstance(p, str) else str(p) for p in prompt)
    messages = body.get("messages")
    if isinstance(messages, list):
        parts: list[str] = []
        for m in messages:
            if isinstance(m, dict):
                parts.append(str(m.get("role", "")))
                parts.append(_content_text(m.get("content")))
        return "\n".join(parts)
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(c.get("text", "")) for c in content if isinstance(c, dict) and c.get("type") == "text"
        )
    return ""
