"""A real-time, vLLM-compatible OpenAI HTTP server over the simulated engine (aiohttp).

Routes: POST /v1/completions, /v1/chat/completions (streaming with SSE, stream_options.
include_usage), GET /v1/models, /health, /version, /metrics (also /prometheus/metrics, where
trtllm-serve serves Prometheus text), POST /v1/load_lora_adapter, /v1/unload_lora_adapter,
and GET/POST/DELETE /admin/faults for fault injection (see simulator/faults.py).
A generation request carrying `x-prefiller-host-port` is prefilled on that pod first (P/D,
see disagg.py).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import secrets
import sys
import time
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from inference_gateway.kvevents.hashing import VllmBlockHasher
from inference_gateway.kvevents.publisher import KVEventsConfig, ZmqEventPublisher
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.dcgm import DCGM_PATH, SimulatedGpu, render_dcgm
from inference_gateway.simulator.disagg import PREFILL_HEADER, RemotePrefill
from inference_gateway.simulator.encode_disagg import ENCODER_HEADER, EncoderOnly, RemoteEncode
from inference_gateway.simulator.engine import Engine
from inference_gateway.simulator.engine_api import add_engine_routes
from inference_gateway.simulator.faults import GARBAGE_METRICS, FaultInjector, FaultSpecError, RequestFault
from inference_gateway.simulator.kv_events import KVEventLog
from inference_gateway.simulator.metrics import EngineCollector, make_registry, render
from inference_gateway.simulator.model_list import model_list
from inference_gateway.simulator.openai_api import (
    SSE_DONE,
    ApiError,
    Kind,
    ParsedRequest,
    ResponseBuilder,
    parse_request,
    sse,
    usage,
)
from inference_gateway.simulator.profile import load_profile
from inference_gateway.simulator.realtime import RealtimeDriver
from inference_gateway.simulator.sequence import Sequence
from inference_gateway.simulator.tokenizer import SimTokenizer, block_hashes, output_text


class SimulatedServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.profile = load_profile(config.profile)
        self.engine = Engine(config.resolve(self.profile), self.profile)
        for adapter in config.lora_adapters:
            self.engine.lora.register(adapter)
        self.tokenizer = SimTokenizer()
        self.created = int(time.time())
        self._rng = random.Random(config.seed)
        self._ids = itertools.count()
        self._id_prefix = secrets.token_hex(4)
        self._driver: RealtimeDriver | None = None
        self._runner: web.AppRunner | None = None
        self.registry: CollectorRegistry | None = None
        self.host = "127.0.0.1"
        self.faults = FaultInjector(config.faults, config.seed)
        self.port = 0
        self._gpu: SimulatedGpu | None = None
        self.remote_prefill = RemotePrefill(
            config.kv_transfer, self.profile.kv_bytes_per_token, config.time_scale
        )
        self.remote_encode = RemoteEncode(
            config.kv_transfer, self.profile.embedding_bytes_per_token, config.time_scale
        )
        self.encoder_only = EncoderOnly(self.engine, config.time_scale)
        self.kv_events = KVEventsConfig.parse(config.kv_events_config or "{}")
        self.publisher: ZmqEventPublisher | None = None
        self._hasher: VllmBlockHasher | None = None
        if self.kv_events.active:
            bs = self.engine.cfg.block_size
            # As vLLM: block hashes are seeded by PYTHONHASHSEED, random when it is unset.
            seed = os.environ.get("PYTHONHASHSEED")
            self._hasher = VllmBlockHasher(
                bs, secrets.token_hex(16) if seed is None else seed, config.prefix_caching_hash_algo
            )
            self.engine.publish_kv_events(KVEventLog(bs))

    @property
    def driver(self) -> RealtimeDriver:
        if self._driver is None:
            raise RuntimeError("server not started")
        return self._driver

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._driver = RealtimeDriver(self.engine, self.config.time_scale)
        if self.kv_events.active:
            self.publisher = ZmqEventPublisher(self.kv_events)
            self._driver.after_step.append(self._publish_kv_events)
        self._driver.start()
        collector = EngineCollector(
            self.engine,
            self.config.served_model_name,
            self.config.metrics_flavor,
            self._driver.now,
            self.config.enable_lora,
        )
        self.registry = make_registry(collector)
        self._runner = web.AppRunner(self._app(), handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.host = host
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._driver is not None:
            await self._driver.stop()
            self._driver = None
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None
        await self.remote_prefill.close()
        await self.remote_encode.close()

    def _publish_kv_events(self) -> None:
        log = self.engine.kv_events
        batch = log.take(time.time()) if log is not None else None
        if batch is not None and self.publisher is not None:
            self.publisher.publish(batch)

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/version", self._version)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/prometheus/metrics", self._metrics)
        app.router.add_get(DCGM_PATH, self._dcgm)
        app.router.add_post("/v1/load_lora_adapter", self._load_lora)
        app.router.add_post("/v1/unload_lora_adapter", self._unload_lora)
        app.router.add_get("/admin/faults", self._get_faults)
        app.router.add_post("/admin/faults", self._set_faults)
        app.router.add_delete("/admin/faults", self._clear_faults)
        add_engine_routes(app, self)
        return app

    # ---- generation -------------------------------------------------------------------
    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "completion")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "chat")

    async def _generate(self, request: web.Request, kind: Kind) -> web.StreamResponse:
        raw = await request.read()
        try:
            parsed = parse_request(kind, raw, self.tokenizer, self.config.media)
            lora = self._resolve_model(parsed.model)
            out_len, reason = self._output_len(parsed)
            self._check_priority(parsed.priority)
        except ApiError as err:
            return _error(err)
        fault = self.faults.for_request()
        if fault.status:
            return _error(ApiError(fault.status, f"injected fault: HTTP {fault.status}", "InjectedFault"))
        if fault.hang:
            await _forever()
        prompt_len = len(parsed.prompt_ids)
        if self._hasher is not None:
            hashes = self._hasher.hashes(parsed.prompt_ids, lora, parsed.cache_salt)
        else:
            hashes = block_hashes(parsed.prompt_ids, self.engine.cfg.block_size)
        prefix = "chatcmpl" if kind == "chat" else "cmpl"
        rid = f"{prefix}-{self._id_prefix}{next(self._ids)}"
        if self.config.encode_only:
            return await self._encode_only(kind, rid, parsed)
        media = parsed.media
        encoders = [h for h in request.headers.get(ENCODER_HEADER, "").split(",") if h]
        if media and encoders and await self.remote_encode.encode(encoders, raw, request.path, media):
            media = ()  # the encoder outputs came from the encode pods
        kv = 0
        prefiller = request.headers.get(PREFILL_HEADER, "")
        if prefiller and prefiller != f"{self.host}:{self.port}":
            extra = {ENCODER_HEADER: ",".join(encoders)} if media != parsed.media else None
            kv = await self.remote_prefill.prefill(prefiller, request.path, raw, prompt_len, extra)
        seq = self.driver.submit(
            rid,
            prompt_len,
            out_len,
            lora=lora,
            block_hashes=hashes,
            finish_reason=reason,
            kv_transferred=kv,
            priority=parsed.priority,
            token_ids=parsed.prompt_ids,
            media=media,
        )
        model = parsed.model or self.config.served_model_name
        builder = ResponseBuilder(kind, rid, model, int(time.time()))
        try:
            if parsed.stream:
                return await self._stream(request, seq, builder, parsed, fault)
            if fault.watches_tokens:
                await self._watch_tokens(seq, fault)
            await self.driver.wait_done(seq)
            text = output_text(seq.uid, 0, seq.max_output)
            use = usage(prompt_len, seq.max_output, seq.cached_tokens)
            body = orjson.dumps(builder.full(text, seq.finish_reason, use))
            return web.Response(body=body, content_type="application/json")
        finally:
            if not seq.done:  # client went away (handler cancelled or write failed)
                self.driver.abort(seq)

    async def _encode_only(self, kind: Kind, rid: str, parsed: ParsedRequest) -> web.Response:
        tokens = await self.encoder_only.encode(parsed.media)
        builder = ResponseBuilder(kind, rid, parsed.model or self.config.served_model_name, int(time.time()))
        body = builder.full(output_text(0, 0, 1), "length", usage(tokens, 1, 0))
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _stream(
        self,
        request: web.Request,
        seq: Sequence,
        builder: ResponseBuilder,
        parsed: ParsedRequest,
        fault: RequestFault,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        sent = 0
        try:
            while True:
                n = await self.driver.wait_progress(seq, sent)
                done = seq.done
                if n > sent or done:
                    if sent == 0 and parsed.kind == "chat":
                        await resp.write(sse(builder.role_chunk()))
                    reason = seq.finish_reason if done else None
                    await resp.write(sse(builder.chunk(output_text(seq.uid, sent, n), reason)))
                    sent = n
                    if fault.watches_tokens:
                        await _act_on_tokens(fault, sent)
                if done:
                    break
            if parsed.include_usage:
                use = usage(seq.prompt_len, sent, seq.cached_tokens)
                await resp.write(sse(builder.usage_chunk(use)))
            await resp.write(SSE_DONE)
            await resp.write_eof()
        except ConnectionResetError:
            pass  # the client disconnected; _generate aborts the request
        return resp

    async def _watch_tokens(self, seq: Sequence, fault: RequestFault) -> None:
        """Non-streaming: apply a token-count fault while the response is being generated."""
        seen = 0
        while not seq.done:
            seen = await self.driver.wait_progress(seq, seen)
            await _act_on_tokens(fault, seen)

    def _resolve_model(self, model: str | None) -> str | None:
        if model is None or model == self.config.served_model_name:
            return None
        if model in self.engine.lora.registered:
            return model
        raise ApiError(404, f"The model `{model}` does not exist.", "NotFoundError")

    def _check_priority(self, priority: int) -> None:
        if priority != 0 and self.engine.cfg.scheduling_policy != "priority":
            # vLLM's own message (its OpenAI server answers 400 to this ValueError)
            raise ApiError(400, f"Got priority {priority} but Priority scheduling is not enabled.")

    def _output_len(self, parsed: ParsedRequest) -> tuple[int, str]:
        max_len = self.engine.cfg.max_model_len
        prompt_len = len(parsed.prompt_ids)
        room = max_len - prompt_len
        requested = parsed.max_tokens
        if room < 1 or (requested is not None and requested > room):
            raise ApiError(
                400,
                f"This model's maximum context length is {max_len} tokens. However, you "
                f"requested {prompt_len + (requested or 1)} tokens ({prompt_len} in the "
                f"messages, {requested or 1} in the completion). Please reduce the length "
                "of the messages or completion.",
            )
        natural = max(self.config.output_len.sample(self._rng), parsed.min_tokens, 1)
        if requested is not None and self.config.max_tokens_mode == "exact":
            return requested, "length"
        limit = requested if requested is not None else room
        return (limit, "length") if natural >= limit else (natural, "stop")

    # ---- other endpoints --------------------------------------------------------------
    async def _models(self, request: web.Request) -> web.Response:
        base, registered = self.config.served_model_name, self.engine.lora.registered
        return _json(model_list(base, registered, self.created, self.engine.cfg.max_model_len))

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _version(self, request: web.Request) -> web.Response:
        return _json({"version": "0.0.0+simulated", "name": self.config.display_name})

    async def _metrics(self, request: web.Request) -> web.Response:
        assert self.registry is not None
        if self.faults.metrics_hang:
            await _forever()
        if self.faults.metrics_down:
            return web.Response(status=503, text="metrics unavailable (injected fault)")
        if self.faults.metrics_garbage:
            return web.Response(body=GARBAGE_METRICS, content_type="text/plain")
        body = render(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _dcgm(self, request: web.Request) -> web.Response:
        """This pod's GPU as the node's dcgm-exporter would show it (see simulator/dcgm.py)."""
        if self._gpu is None:
            self._gpu = SimulatedGpu(self.engine, self.driver.now)
        name = self.config.display_name
        body = render_dcgm(self._gpu.sample(), name, self.config.namespace, f"node-{name}")
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _load_lora(self, request: web.Request) -> web.Response:
        try:
            name, path = await _lora_body(request, need_path=True)
        except ApiError as err:
            return _error(err)
        if not self.engine.lora.register(name, path):
            msg = f"The lora adapter '{name}' has already been loaded."
            return _error(ApiError(400, msg, "InvalidUserInput"))
        return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")

    async def _unload_lora(self, request: web.Request) -> web.Response:
        try:
            name, _ = await _lora_body(request, need_path=False)
        except ApiError as err:
            return _error(err)
        if not self.engine.lora.unregister(name):
            msg = f"The lora adapter '{name}' cannot be found."
            return _error(ApiError(404, msg, "NotFoundError"))
        return web.Response(text=f"Success: LoRA adapter '{name}' removed successfully.")

    # ---- fault injection -------------------------------------------------------------
    async def _get_faults(self, request: web.Request) -> web.Response:
        return _json({"faults": self.faults.describe()})

    async def _set_faults(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            specs = body.get("faults") if isinstance(body, dict) else None
            if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
                raise ApiError(400, 'expected {"faults": ["NAME[:ARG]", ...]}')
            self.faults.replace(specs)
        except orjson.JSONDecodeError as exc:
            return _error(ApiError(400, f"invalid JSON body: {exc}"))
        except FaultSpecError as exc:
            return _error(ApiError(400, str(exc)))
        except ApiError as err:
            return _error(err)
        return await self._get_faults(request)

    async def _clear_faults(self, request: web.Request) -> web.Response:
        self.faults.replace(())
        return await self._get_faults(request)


async def _forever() -> None:
    """Hang: only the client going away (handler cancellation) ends the wait."""
    await asyncio.Event().wait()


async def _act_on_tokens(fault: RequestFault, tokens: int) -> None:
    if fault.die_after and tokens >= fault.die_after:
        print(f"simulator: injected crash after {tokens} tokens", file=sys.stderr, flush=True)
        os._exit(70)  # a crash: no cleanup, sockets are closed by the kernel
    if fault.stall_after and tokens >= fault.stall_after:
        await _forever()


async def _lora_body(request: web.Request, need_path: bool) -> tuple[str, str]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"invalid JSON body: {exc}") from exc
    name = body.get("lora_name") if isinstance(body, dict) else None
    path = body.get("lora_path", "") if isinstance(body, dict) else ""
    if not isinstance(name, str) or not name or (need_path and not path):
        need = "'lora_name' and 'lora_path'" if need_path else "'lora_name'"
        raise ApiError(400, f"{need} must be provided.", "InvalidUserInput")
    return name, str(path)


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")


def _error(err: ApiError) -> web.Response:
    return web.Response(body=err.body(), status=err.status, content_type="application/json")
