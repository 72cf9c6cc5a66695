"""Disaggregated prefill/decode (P/D) in the simulator: KV transfer cost and the decode side.

As in llm-d with vLLM's NIXL connector, the decode pod is the request's destination and the
gateway names a prefill pod in the `x-prefiller-host-port` header. The decode pod then

1. sends the same request to the prefill pod with `max_tokens: 1` (and
   `kv_transfer_params.do_remote_decode`), which computes the prompt's KV cache;
2. pulls that KV cache: `latency + tokens x kv_bytes_per_token / bandwidth` (KVTransfer);
3. schedules the request with the transferred tokens already computed: it computes only the
   last prompt token (which yields the first output token) and then decodes.

The real-time server does this with an HTTP call to the prefill pod (`RemotePrefill`); the
virtual-time fleet models the same stages in `pd_fleet.PDFleet`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import orjson

from inference_gateway.simulator.config import KVTransfer

log = logging.getLogger(__name__)

PREFILL_HEADER = "x-prefiller-host-port"  # the gateway plugin's header (llm-d's name)
REMOTE_STAGE_TIMEOUT_S = 600.0


def transferred_tokens(prompt_tokens: int) -> int:
    """Tokens whose KV the decode pod receives: all but the last, which it computes itself."""
    return max(prompt_tokens - 1, 0)


def prefill_request_body(raw: bytes) -> bytes:
    """The decode pod's request to the prefill pod: the client's request, one token, no stream."""
    body: dict[str, Any] = orjson.loads(raw)
    body["max_tokens"] = 1
    if "max_completion_tokens" in body:
        body["max_completion_tokens"] = 1
    body["stream"] = False
    for key in ("stream_options", "min_tokens"):
        body.pop(key, None)
    body["kv_transfer_params"] = {"do_remote_decode": True, "do_remote_prefill": False}
    return orjson.dumps(body)


class RemoteStage:
    """A decode pod's calls to the pods of an earlier stage (prefill, encode): one HTTP session,
    call and failure counts, and the wait for the stage's output to cross the link."""

    def __init__(self, transfer: KVTransfer, bytes_per_token: int, time_scale: float) -> None:
        self.transfer = transfer
        self.bytes_per_token = bytes_per_token
        self.time_scale = time_scale
        self.requests = 0
        self.failures = 0
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=REMOTE_STAGE_TIMEOUT_S)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def _receive(self, tokens: int) -> None:
        """Wait while `tokens` of the stage's output cross the link (model time, scaled)."""
        await asyncio.sleep(self.transfer.seconds(tokens, self.bytes_per_token) * self.time_scale)


class RemotePrefill(RemoteStage):
    """The decode side of P/D in the real-time server.

    `prefill()` asks the prefill pod to prefill, waits for the KV transfer (model time scaled
    to wall time) and returns how many prompt tokens arrived; 0 means "prefill locally" (the
    prefill pod failed or refused), so a broken prefill pod costs latency, not errors.
    """

    async def prefill(
        self,
        prefiller: str,
        path: str,
        raw_body: bytes,
        prompt_tokens: int,
        extra: dict[str, str] | None = None,
    ) -> int:
        """`extra`: headers passed on (E/P/D: the encode pods, whose cached outputs the prefill
        pod then fetches instead of running its own encoder)."""
        self.requests += 1
        url = f"http://{prefiller}{path}"
        headers = {"content-type": "application/json", **(extra or {})}
        try:
            async with self._client().post(url, data=prefill_request_body(raw_body), headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise aiohttp.ClientResponseError(r.request_info, (), status=r.status)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.failures += 1
            log.warning("remote prefill on %s failed (%s); prefilling locally", prefiller, exc)
            return 0
        tokens = transferred_tokens(prompt_tokens)
        await self._receive(tokens)
        return tokens
