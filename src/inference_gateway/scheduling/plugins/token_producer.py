"""token-producer (llm-d; legacy alias `tokenizer`): the engine's own tokenization of each
request, before scheduling, from vLLM's render endpoints.

`POST {vllm.http}/v1/completions/render` ({model, prompt}) for completions and
`/v1/chat/completions/render` ({model, messages, and the body's tools, documents,
chat_template, chat_template_kwargs, add_generation_prompt, continue_final_message}) for chats,
served by `vllm serve <model>` or the GPU-less `vllm launch render <model>` (a sidecar or a
shared Service). The token ids go on the request for precise-prefix-cache-scorer (exact block
hashes without a local tokenizer) and context-length-aware (exact length). A request that
already carries token ids is not rendered again. Failures (timeout, non-2xx, an unsupported
body) are logged and the request is scheduled without them, as llm-d's director does.

Parameters: `modelName` (required: the model sent in render requests), `vllm.http`
(http://localhost:8000), `vllm.timeout` (5s, text requests), `vllm.mmTimeout` (30s, chats with
content parts). llm-d's legacy `udsTokenizerConfig` (a gRPC tokenizer over a Unix socket) is
not supported: use `vllm.http`.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from inference_gateway.scheduling.params import get_duration_s, get_str, reject_unknown
from inference_gateway.scheduling.types import SchedulingRequest, TokenizedPrompt

log = logging.getLogger(__name__)

DEFAULT_URL = "http://localhost:8000"
COMPLETIONS_RENDER = "/v1/completions/render"
CHAT_RENDER = "/v1/chat/completions/render"
# Body fields llm-d forwards to the chat render request (they change the rendered template).
CHAT_FIELDS = (
    "tools",
    "documents",
    "chat_template",
    "chat_template_kwargs",
    "add_generation_prompt",
    "continue_final_message",
)
ERROR_SNIPPET_BYTES = 1024


class RenderError(RuntimeError):
    pass


class TokenProducer:
    type_name = "token-producer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        reject_unknown(params, frozenset({"modelName", "vllm", "udsTokenizerConfig"}))
        self.name = name
        self.model_name = get_str(params, "modelName", "")
        if not self.model_name:
            raise ValueError("'modelName' must be specified")
        if params.get("udsTokenizerConfig"):
            raise ValueError(
                "'udsTokenizerConfig' (gRPC tokenizer over a Unix socket) is not supported; use 'vllm.http'"
            )
        vllm = params.get("vllm") or {}
        if not isinstance(vllm, dict):
            raise ValueError("parameter 'vllm' must be a mapping")
        reject_unknown(vllm, frozenset({"http", "timeout", "mmTimeout"}))
        self.base_url = get_str(vllm, "http", DEFAULT_URL).rstrip("/") or DEFAULT_URL
        self.timeout_s = get_duration_s(vllm, "timeout", 5.0)
        self.mm_timeout_s = get_duration_s(vllm, "mmTimeout", 30.0)
        self._http: aiohttp.ClientSession | None = None
        self.failures = 0

    # ---- lifecycle (started and stopped with the EPP) -----------------------------------
    async def start(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ---- the request path -----------------------------------------------------------------
    async def produce(self, request: SchedulingRequest, body: dict[str, Any]) -> None:
        if request.tokens is not None:
            return
        try:
            request.tokens = await self.render(body)
        except (RenderError, aiohttp.ClientError, TimeoutError) as exc:
            self.failures += 1
            log.warning(
                "%s: request %s not tokenized: %s", self.name, request.request_id, exc or type(exc).__name__
            )

    async def render(self, body: dict[str, Any]) -> TokenizedPrompt:
        messages = body.get("messages")
        if isinstance(messages, list):
            payload = {"model": self.model_name, "messages": messages}
            payload.update({k: body[k] for k in CHAT_FIELDS if k in body})
            parts = any(isinstance(m, dict) and isinstance(m.get("content"), list) for m in messages)
            answer = await self._post(CHAT_RENDER, payload, self.mm_timeout_s if parts else self.timeout_s)
        elif isinstance(body.get("prompt"), str):
            answers = await self._post(
                COMPLETIONS_RENDER, {"model": self.model_name, "prompt": body["prompt"]}, self.timeout_s
            )
            if not isinstance(answers, list) or not answers:
                raise RenderError("vLLM render returned an empty response")
            answer = answers[0]
        else:
            raise RenderError("unsupported request body (neither chat messages nor a string prompt)")
        ids = answer.get("token_ids") if isinstance(answer, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise RenderError("vLLM render response has no token_ids list")
        features = answer.get("features") or {}
        return TokenizedPrompt(ids, has_media=bool(isinstance(features, dict) and features.get("mm_hashes")))

    async def _post(self, path: str, payload: dict[str, Any], timeout_s: float) -> Any:
        if self._http is None:
            await self.start()
        assert self._http is not None
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with self._http.post(self.base_url + path, json=payload, timeout=timeout) as resp:
            if not 200 <= resp.status < 300:
                snippet = (await resp.content.read(ERROR_SNIPPET_BYTES)).decode(errors="replace")
                raise RenderError(f"vLLM render returned status {resp.status}: {snippet}")
            try:
                return await resp.json(content_type=None)
            except ValueError as exc:
                raise RenderError(f"vLLM render response is not JSON: {exc}") from None


class LegacyTokenizer(TokenProducer):
    """llm-d's deprecated spelling; warns once per instance."""

    type_name = "tokenizer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(name, parameters)
        log.warning("plugin type 'tokenizer' (%s) is deprecated; use 'token-producer'", name)
