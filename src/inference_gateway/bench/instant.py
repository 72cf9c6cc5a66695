"""An "instant" OpenAI-shaped backend: answers at once, so only the gateway's latency remains.

Serves POST /v1/completions and /v1/chat/completions (JSON or SSE with `tokens` chunks),
GET /health, /v1/models and a vLLM-style /metrics page (running = requests in flight) so the
EPP's scraper and scheduler see a normal model server. One process can listen on several
loopback addresses: one "pod" per address, as in a pool.

Run: python -m inference_gateway.bench.instant --listen 127.0.9.1:8000 --listen 127.0.9.2:8000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time

import orjson
from aiohttp import web

from inference_gateway.local.event_loop import loop_runner

MODEL = "meta-llama/Llama-2-7b-hf"


class InstantBackend:
    def __init__(self, model: str = MODEL, tokens: int = 1, itl_s: float = 0.0) -> None:
        self.model = model
        self.tokens = max(1, tokens)
        self.itl_s = itl_s  # > 0: one chunk per token, this far apart (inter-token latency runs)
        self.in_flight = 0
        self.served = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/chat/completions", self.completions)
        app.router.add_get("/health", self.health)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def completions(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        try:
            body = orjson.loads(await request.read())
            model = str(body.get("model") or self.model)
            n = min(self.tokens, int(body.get("max_tokens") or self.tokens))
            if body.get("stream"):
                return await self._stream(request, model, n)
            payload = {
                "id": "cmpl-instant",
                "object": "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "text": " ok" * n, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": n + 1},
            }
            return web.Response(body=orjson.dumps(payload), content_type="application/json")
        finally:
            self.in_flight -= 1
            self.served += 1

    async def _stream(self, request: web.Request, model: str, n: int) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        head = b'data: {"id":"cmpl-instant","object":"text_completion","model":' + orjson.dumps(model)
        chunks = [head + b',"choices":[{"index":0,"text":" ok","finish_reason":null}]}\n\n'] * n
        usage = orjson.dumps({"prompt_tokens": 1, "completion_tokens": n, "total_tokens": n + 1})
        last = head + b',"choices":[],"usage":' + usage + b"}\n\ndata: [DONE]\n\n"
        if self.itl_s > 0:
            for i, chunk in enumerate(chunks):
                if i:
                    await asyncio.sleep(self.itl_s)
                await resp.write(chunk)
            chunks = []
        await resp.write(b"".join([*chunks, last]))
        await resp.write_eof()
        return resp

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def models(self, request: web.Request) -> web.Response:
        data = {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "instant"}]}
        return web.Response(body=orjson.dumps(data), content_type="application/json")

    async def metrics(self, request: web.Request) -> web.Response:
        label = f'{{model_name="{self.model}"}}'
        text = (
            f"vllm:num_requests_running{label} {self.in_flight}\n"
            f"vllm:num_requests_waiting{label} 0\n"
            f"vllm:kv_cache_usage_perc{label} 0.0\n"
            f"vllm:request_success_total{label} {self.served}\n"
        )
        return web.Response(text=text, content_type="text/plain")


async def serve(listen: list[tuple[str, int]], backend: InstantBackend) -> web.AppRunner:
    runner = web.AppRunner(backend.app(), access_log=None, handle_signals=False)
    await runner.setup()
    for host, port in listen:
        await web.TCPSite(runner, host, port, backlog=4096).start()
    return runner


async def _main(listen: list[tuple[str, int]], tokens: int, model: str, itl_s: float) -> None:
    runner = await serve(listen, InstantBackend(model, tokens, itl_s))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", action="append", required=True, help="host:port, repeatable")
    parser.add_argument("--tokens", type=int, default=1, help="chunks per streamed answer")
    parser.add_argument("--itl-ms", type=float, default=0.0, help="chunks this far apart")
    parser.add_argument("--model", default=MODEL)
    args = parser.parse_args(argv)
    listen = [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in args.listen]
    loop_runner()(_main(listen, args.tokens, args.model, args.itl_ms / 1e3))


if __name__ == "__main__":
    main()
