"""Encode disaggregation (E/P/D) in the real-time simulator, as llm-d's sidecar and vLLM's
encoder-only instances do it.

The gateway names encode pods in `x-encoder-hosts-ports: ip:port[,ip:port]`. The decode pod
(llm-d's sidecar, `fanoutEncoderPrimer`) then

1. sends each image / audio item of the chat request to an encode pod, round robin over the
   list, as the request with that one item as its only content, `max_tokens: 1`, no stream
   (items with the same URL go once);
2. waits for all of them, then for the encoder output to cross the link
   (`tokens x embedding_bytes_per_token` over the pod's KVTransfer figures, in model time);
3. prefills without running its own encoder for those items.

If any encode call fails the decode pod encodes locally, so a broken encode pod costs latency,
not errors. An encode pod (`ServerConfig.encode_only`, `--encode-only`) runs only its encoder:
items queue on its one GPU at the profile's `encoder_ms_per_1k_tokens` unless its encoder
cache holds them, and it answers with one token.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

from inference_gateway.simulator.disagg import RemoteStage
from inference_gateway.simulator.encoder import MediaSpan
from inference_gateway.simulator.engine import Engine

log = logging.getLogger(__name__)

ENCODER_HEADER = "x-encoder-hosts-ports"  # the gateway plugin's header (llm-d's name)
MEDIA_TYPES = frozenset({"image_url", "audio_url", "input_audio"})  # llm-d sidecar's mmTypes


def media_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's media content parts, in order, URL duplicates dropped."""
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            if not isinstance(part, dict) or part.get("type") not in MEDIA_TYPES:
                continue
            spec = part.get(part["type"])
            url = spec.get("url") if isinstance(spec, dict) else None
            if isinstance(url, str):
                if url in seen:
                    continue
                seen.add(url)
            items.append(part)
    return items


def encoder_request(body: dict[str, Any], item: dict[str, Any]) -> bytes:
    """llm-d's buildEncoderRequest: the client's request with one media item and no text."""
    request = copy.copy(body)
    request["messages"] = [{"role": "user", "content": [item]}]
    request["max_tokens"] = 1
    request["stream"] = False
    request.pop("stream_options", None)
    return orjson.dumps(request)


class RemoteEncode(RemoteStage):
    """The decode side: have the named encode pods encode a request's media."""

    async def encode(
        self, hosts: Sequence[str], raw_body: bytes, path: str, media: Sequence[MediaSpan]
    ) -> bool:
        """True when every item was encoded remotely and its output has arrived."""
        body = orjson.loads(raw_body)
        items = media_items(body)
        if not hosts or not items:
            return False
        requests = [encoder_request(body, item) for item in items]
        calls = (self._call(hosts[k % len(hosts)], path, r) for k, r in enumerate(requests))
        results = await asyncio.gather(*calls)
        if not all(results):
            self.failures += 1
            return False
        await self._receive(sum(span[2] for span in media))
        return True

    async def _call(self, host: str, path: str, body: bytes) -> bool:
        self.requests += 1
        try:
            headers = {"content-type": "application/json"}
            async with self._client().post(f"http://{host}{path}", data=body, headers=headers) as r:
                await r.read()
                if r.status == 200:
                    return True
                log.warning("encode on %s answered %d; encoding locally", host, r.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("encode on %s failed (%s); encoding locally", host, exc)
        return False


class EncoderOnly:
    """The encode pod: its encoder (with vLLM's encoder cache) on one GPU, nothing else."""

    def __init__(self, engine: Engine, time_scale: float) -> None:
        self.engine = engine
        self.time_scale = time_scale
        self._gpu = asyncio.Lock()

    async def encode(self, media: Sequence[MediaSpan]) -> int:
        """Encode the items (cache misses only); returns their tokens."""
        async with self._gpu:
            todo = self.engine.encoder.encode(media, 0)
            self.engine.stats.encoder_tokens += todo
            seconds = todo * self.engine.profile.encoder_ms_per_1k_tokens / 1e6
            self.engine.stats.busy_time += seconds
            await asyncio.sleep(seconds * self.time_scale)
        return sum(span[2] for span in media)
