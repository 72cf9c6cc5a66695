"""The engine's non-OpenAI endpoints that routers call on their workers, per engine flavor.

vLLM (vllm/entrypoints/openai/api_server.py) always serves `POST /tokenize`; vllm-router calls it
(after `/v1/*/render`, which vLLM serves only with VLLM_ENABLE_SCALE_OUT_ENDPOINTS=1, so 404
here too) to get the token ids its `kv_aware` policy hashes. The ids must be the ones the engine
caches, or the router's block hashes never meet the KV events: both come from `parse_request`.

SGLang (sglang/srt/entrypoints/http_server.py) serves `/get_model_info`, `/get_server_info` and
their newer names `/model_info`, `/server_info`, plus `/health_generate`; sglang-router reads
them when a worker registers (model id, data-parallel size). vLLM has none of them, so a
vLLM-flavored pod answers 404 as vLLM does and the router falls back to its defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from inference_gateway.simulator.openai_api import ApiError, Kind, parse_request

if TYPE_CHECKING:
    from inference_gateway.simulator.server import SimulatedServer

SIM_VERSION = "0.0.0+simulated"


def add_engine_routes(app: web.Application, server: SimulatedServer) -> None:
    if server.config.metrics_flavor == "vllm":
        app.router.add_post("/tokenize", partial(_tokenize, server))
    elif server.config.metrics_flavor == "sglang":
        for path in ("/get_model_info", "/model_info"):
            app.router.add_get(path, partial(_info, model_info, server))
        for path in ("/get_server_info", "/server_info"):
            app.router.add_get(path, partial(_info, server_info, server))
        app.router.add_get("/health_generate", _ok)


async def _ok(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def _info(
    build: Callable[[SimulatedServer], dict[str, Any]], server: SimulatedServer, request: web.Request
) -> web.Response:
    return web.Response(body=orjson.dumps(build(server)), content_type="application/json")


async def _tokenize(server: SimulatedServer, request: web.Request) -> web.Response:
    """vLLM's TokenizeResponse: the prompt's (or rendered chat's) token ids as the engine sees them."""
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None  # parse_request reports it
    kind: Kind = "chat" if isinstance(body, dict) and "messages" in body else "completion"
    try:
        parsed = parse_request(kind, raw, server.tokenizer, server.config.media)
    except ApiError as err:
        return web.Response(body=err.body(), status=err.status, content_type="application/json")
    out = {
        "count": len(parsed.prompt_ids),
        "max_model_len": server.engine.cfg.max_model_len,
        "tokens": parsed.prompt_ids,
        "token_strs": None,
    }
    return web.Response(body=orjson.dumps(out), content_type="application/json")


def model_info(server: SimulatedServer) -> dict[str, Any]:
    name = server.config.served_model_name
    return {
        "model_path": name,
        "tokenizer_path": name,
        "is_generation": True,
        "preferred_sampling_params": None,
        "weight_version": "default",
        "has_image_understanding": False,
        "has_audio_understanding": False,
    }


def server_info(server: SimulatedServer) -> dict[str, Any]:
    cfg = server.engine.cfg
    name = server.config.served_model_name
    return {
        "model_path": name,
        "tokenizer_path": name,
        "served_model_name": name,
        "tp_size": 1,
        "dp_size": 1,
        "page_size": cfg.block_size,
        "context_length": cfg.max_model_len,
        "max_running_requests": cfg.max_num_seqs,
        "max_prefill_tokens": cfg.max_num_batched_tokens,
        "max_total_num_tokens": cfg.num_gpu_blocks * cfg.block_size,
        "schedule_policy": cfg.scheduling_policy,
        "internal_states": [{"max_total_num_tokens": cfg.num_gpu_blocks * cfg.block_size}],
        "version": SIM_VERSION,
    }
