"""Parsing of OpenAI-style requests and building of vLLM-shaped responses and SSE chunks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from inference_gateway.media import MediaTokenRule
from inference_gateway.simulator.encoder import MediaSpan
from inference_gateway.simulator.tokenizer import SimTokenizer, encode_chat, has_media, render_chat

DEFAULT_MEDIA_RULE = MediaTokenRule()

Kind = Literal["completion", "chat"]


class ApiError(Exception):
    """An OpenAI-style error: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, type_: str = "BadRequestError") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_

    def body(self) -> bytes:
        err = {"message": self.message, "type": self.type, "param": None, "code": self.status}
        return orjson.dumps({"error": err})


@dataclass(slots=True)
class ParsedRequest:
    kind: Kind
    model: str | None
    prompt_ids: list[int]
    max_tokens: int | None
    min_tokens: int
    stream: bool
    include_usage: bool
    priority: int = 0
    cache_salt: str | None = None
    media: tuple[MediaSpan, ...] = ()  # images / audio in the prompt (chat only)


def _int_field(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ApiError(400, f"'{name}' must be a non-negative integer")
    return value


def _prompt_ids(prompt: Any, tok: SimTokenizer) -> list[int]:
    if isinstance(prompt, list) and len(prompt) == 1 and not isinstance(prompt[0], int):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return tok.encode(prompt)
    if isinstance(prompt, list) and all(isinstance(t, int) and t >= 0 for t in prompt):
        return list(prompt)
    raise ApiError(400, "'prompt' must be a string, a list with one string, or token ids")


def parse_request(
    kind: Kind, raw: bytes, tok: SimTokenizer, media_rule: MediaTokenRule = DEFAULT_MEDIA_RULE
) -> ParsedRequest:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"invalid JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    media: tuple[MediaSpan, ...] = ()
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "'messages' must be a non-empty list")
        if not all(isinstance(m, dict) for m in messages):
            raise ApiError(400, "each message must be an object")
        generation_prompt = bool(body.get("add_generation_prompt", True))
        if has_media(messages):
            ids, spans = encode_chat(messages, tok, media_rule, generation_prompt)
            media = tuple(spans)
        else:
            ids = tok.encode(render_chat(messages, generation_prompt))
    else:
        if "prompt" not in body:
            raise ApiError(400, "'prompt' is required")
        ids = _prompt_ids(body["prompt"], tok)
    if not ids:
        raise ApiError(400, "the prompt is empty")
    if (_int_field(body, "n") or 1) != 1:
        raise ApiError(400, "the simulator only supports n=1")
    max_tokens = _int_field(body, "max_tokens")
    if max_tokens is None:
        max_tokens = _int_field(body, "max_completion_tokens")
    if max_tokens == 0:
        raise ApiError(400, "max_tokens must be at least 1")
    options = body.get("stream_options") or {}
    model = body.get("model")
    return ParsedRequest(
        kind=kind,
        model=model if isinstance(model, str) else None,
        prompt_ids=ids,
        max_tokens=max_tokens,
        min_tokens=_int_field(body, "min_tokens") or 0,
        stream=bool(body.get("stream", False)),
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        priority=_priority(body),
        cache_salt=body.get("cache_salt") if isinstance(body.get("cache_salt"), str) else None,
        media=media,
    )


def _priority(body: dict[str, Any]) -> int:
    """vLLM's `priority` request field: any integer, lower runs first (priority policy only)."""
    value = body.get("priority", 0)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, "'priority' must be an integer")
    return value


def usage(prompt: int, completion: int, cached: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


class ResponseBuilder:
    """Builds the response objects of one request (ids, model and timestamps fixed)."""

    def __init__(self, kind: Kind, request_id: str, model: str, created: int) -> None:
        self.kind, self.id, self.model, self.created = kind, request_id, model, created

    def _envelope(self, obj: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": obj,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def role_chunk(self) -> dict[str, Any]:
        delta = {"role": "assistant", "content": ""}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        return self._envelope("chat.completion.chunk", [choice])

    def chunk(self, text: str, finish_reason: str | None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": finish_reason}
        if finish_reason is not None:
            choice["stop_reason"] = None
        if self.kind == "chat":
            choice["delta"] = {"content": text}
            return self._envelope("chat.completion.chunk", [choice])
        choice["text"] = text
        return self._envelope("text_completion", [choice])

    def usage_chunk(self, use: dict[str, Any]) -> dict[str, Any]:
        obj = "chat.completion.chunk" if self.kind == "chat" else "text_completion"
        out = self._envelope(obj, [])
        out["usage"] = use
        return out

    def full(self, text: str, finish_reason: str, use: dict[str, Any]) -> dict[str, Any]:
        choice: dict[str, Any] = {
            "index": 0,
            "logprobs": None,
            "finish_reason": finish_reason,
            "stop_reason": None,
        }
        if self.kind == "chat":
            choice["message"] = {"role": "assistant", "content": text, "tool_calls": []}
            out = self._envelope("chat.completion", [choice])
        else:
            choice["text"] = text
            out = self._envelope("text_completion", [choice])
        out["usage"] = use
        return out


def sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
