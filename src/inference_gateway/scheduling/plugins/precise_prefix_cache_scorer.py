"""precise-prefix-cache-scorer (llm-d's name): prefix affinity from the engines' own KV events.

The EPP subscribes to each pod's KV-cache events (vLLM `--kv-events-config`, ZMQ + msgpack,
see kvevents/), keeps an exact index of the blocks each pod holds, tokenizes the prompt with
the engine's tokenizer and hashes its blocks as vLLM does; score = leading blocks the pod
holds / prompt blocks. Pods that have sent no events yet, prompts the tokenizer cannot
handle, and configs without a tokenizer are scored by the approximate index of
prefix-cache-scorer (character blocks of the prompts routed to each pod). When a
`token-producer` has rendered the request through vLLM, its token ids are hashed instead of
the scorer's own tokenizer's (requests with images or audio, whose hashes vLLM keys by media,
fall back to the approximate index).

Parameters:
  tokenizer: "sim" (the bundled simulator's tokenizer and chat template) or the path of a
    Hugging Face tokenizer.json (vLLM's tokenization of /v1/completions prompts; needs the
    `tokenizers` package). Default none: the approximate index only.
  tokenProcessorConfig: {blockSize: engine block size in tokens (16), hashSeed: the engines'
    PYTHONHASHSEED (""), hashAlgo: the engines' --prefix-caching-hash-algo (sha256_cbor)}
  kvEventsConfig: {socketPort (or podDiscoveryConfig.socketPort): the port each pod publishes
    on (5557); socketPortOffset: instead, the pod's serving port plus this (several pods on one
    host, e.g. a local fleet); topicFilter: topic prefix to subscribe to (""); discoverPods:
    must be true; or zmqEndpoint: llm-d's global socket, which the EPP binds and every pod's
    publisher connects to, naming itself in the topic kv@<pod ip>@<model>}
  modelName: the pods' base model; a request for any other target model is a LoRA adapter,
    whose name vLLM folds into the block hashes (default: every request is for the base model)
  maxPrefixBlocksToMatch: token blocks looked at (256)
  speculativeIndexing: llm-d's speculative indexing (false, as llm-d): after each pick the
    prompt's blocks count as held by the picked pod (and the prefill pod's, P/D) for
    speculativeTTL, beside what the pod's events say (kvevents/index.py); without it a burst
    of requests with a new prefix spreads over the fleet until the first one's prefill is
    reported
  speculativeTTL: the speculative entries' lifetime ("2s", llm-d's default; 0 means 2s too)
  speculativeHoldInFlight: ours (false): also keep a request's entries while it is in flight,
    however long it queues in the engine, and for speculativeTTL after it completes
  expectTTL: our older name: speculativeTTL, and speculativeIndexing defaults to true
  approximate: parameters of the fallback prefix-cache-scorer
  indexerConfig: accepted for llm-d config compatibility; the index is in memory, unbounded
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.kvevents.global_subscriber import GlobalKVEventSubscriber
from inference_gateway.kvevents.hashing import HASH_ALGOS, VllmBlockHasher
from inference_gateway.kvevents.index import DEFAULT_SPECULATIVE_TTL_S, KVBlockIndex
from inference_gateway.kvevents.subscriber import KVEventSubscriber
from inference_gateway.kvevents.tokenize import PromptTokenizer, load_tokenizer
from inference_gateway.scheduling.params import get_bool, get_duration_s, get_int, get_str
from inference_gateway.scheduling.plugins.prefix_cache_scorer import PrefixCacheScorer
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

DEFAULT_EVENTS_PORT = 5557
_KNOWN = {
    "tokenizer",
    "tokenProcessorConfig",
    "kvEventsConfig",
    "modelName",
    "maxPrefixBlocksToMatch",
    "expectTTL",
    "speculativeIndexing",
    "speculativeTTL",
    "speculativeHoldInFlight",
    "approximate",
    "indexerConfig",
}


def _section(params: dict[str, Any], key: str) -> dict[str, Any]:
    value = params.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"parameter '{key}' must be a mapping")
    return value


def _speculation(params: dict[str, Any]) -> tuple[bool, float]:
    """(speculativeIndexing, speculativeTTL in seconds), llm-d's parameters; our older
    `expectTTL` (speculation always on) still reads as the TTL and turns speculation on."""
    legacy = "expectTTL" in params
    enabled = get_bool(params, "speculativeIndexing", legacy)
    key = "speculativeTTL" if "speculativeTTL" in params or not legacy else "expectTTL"
    ttl = get_duration_s(params, key, DEFAULT_SPECULATIVE_TTL_S)
    return enabled, ttl if ttl > 0 else DEFAULT_SPECULATIVE_TTL_S  # llm-d: <= 0 is the default


class PrecisePrefixCacheScorer:
    type_name = "precise-prefix-cache-scorer"
    affinity = True  # where the request's state is, not load (interfaces.AffinityScorer)
    extracts = "endpoints"  # an extractor of endpoint-notification-source (pod add/delete)

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = dict(parameters or {})
        unknown = set(params) - _KNOWN
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))}")
        self.name = name
        tokens = _section(params, "tokenProcessorConfig")
        algo = get_str(tokens, "hashAlgo", "sha256_cbor")
        if algo not in HASH_ALGOS:
            raise ValueError(f"tokenProcessorConfig.hashAlgo must be one of {', '.join(HASH_ALGOS)}")
        self.hasher = VllmBlockHasher(
            get_int(tokens, "blockSize", 16, minimum=1), get_str(tokens, "hashSeed", ""), algo
        )
        self.tokenizer: PromptTokenizer | None = load_tokenizer(get_str(params, "tokenizer", ""))
        self.model_name = get_str(params, "modelName", "")
        self.max_blocks = get_int(params, "maxPrefixBlocksToMatch", 256, minimum=1)
        self.speculative, ttl = _speculation(params)
        self.index = KVBlockIndex(ttl, get_bool(params, "speculativeHoldInFlight", False))
        self.subscriber = self._subscriber(_section(params, "kvEventsConfig"))
        self.approximate = PrefixCacheScorer(f"{name}/approximate", _section(params, "approximate"))
        self.clock: Callable[[], float] = time.monotonic
        self.blocks_looked_up = 0
        self.blocks_matched = 0

    def _subscriber(self, events: dict[str, Any]) -> KVEventSubscriber | GlobalKVEventSubscriber:
        topics = get_str(events, "topicFilter", "")
        if "zmqEndpoint" in events:  # llm-d's global socket: the pods connect to the EPP
            return GlobalKVEventSubscriber(self.index, get_str(events, "zmqEndpoint", ""), topics)
        if not get_bool(events, "discoverPods", True):
            raise ValueError("kvEventsConfig.discoverPods must be true (per-pod subscriptions)")
        discovery = _section(events, "podDiscoveryConfig")
        port = get_int(discovery, "socketPort", get_int(events, "socketPort", DEFAULT_EVENTS_PORT), minimum=1)
        offset = events.get("socketPortOffset")
        if offset is not None and (not isinstance(offset, int) or isinstance(offset, bool)):
            raise ValueError(f"kvEventsConfig.socketPortOffset must be an integer, got {offset!r}")
        return KVEventSubscriber(self.index, port, topics, offset)

    # ---- lifecycle (started and stopped with the EPP) -----------------------------------
    async def start(self) -> None:
        await self.subscriber.start()

    async def stop(self) -> None:
        await self.subscriber.stop()

    # ---- scoring ------------------------------------------------------------------------
    def block_hashes(self, request: SchedulingRequest) -> list[int] | None:
        """vLLM's block hashes of the prompt, or None when it cannot be tokenized exactly."""
        tok = self.tokenizer
        limit = self.max_blocks * self.hasher.block_size
        tokens = request.tokens
        if tokens is not None:  # a token-producer rendered it as the engine will
            ids: list[int] | None = None if tokens.has_media else tokens.token_ids[:limit]
        elif tok is None:
            return None
        elif request.messages is not None:
            ids = tok.encode_chat(request.messages, limit)
        else:
            ids = tok.encode_prompt(request.prompt, limit)
        if ids is None:
            return None
        lora = request.target_model if self.model_name and request.target_model != self.model_name else None
        return self.hasher.hashes(ids, lora, request.cache_salt or None, self.max_blocks)

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        approx = self.approximate.score(state, request, endpoints)
        hashes = self.block_hashes(request)
        state[self.name] = hashes
        if not hashes:
            return approx
        matches = self.index.match(hashes, self.clock())
        self.blocks_looked_up += len(hashes)
        if matches:
            self.blocks_matched += max(matches.values())
        exact, total = self.index.has_pod, float(len(hashes))
        return [
            matches.get(e.address, 0) / total if exact(e.address) else a
            for e, a in zip(endpoints, approx, strict=True)
        ]

    def on_picked(self, state: CycleState, request: SchedulingRequest, endpoint: Endpoint) -> None:
        self.approximate.on_picked(state, request, endpoint)
        hashes = state.get(self.name)
        if hashes and self.speculative:
            self.index.speculate(endpoint.address, hashes, self.clock(), request.request_id)

    def observe_latency(self, request_id: str, ttft_s: float | None, tpot_s: float | None) -> None:
        """The request completed: its speculative entries are no longer held in flight."""
        self.index.request_done(request_id)

    def endpoints_changed(self, addresses: Collection[str]) -> None:
        self.approximate.endpoints_changed(addresses)
        self.subscriber.set_pods(addresses)
