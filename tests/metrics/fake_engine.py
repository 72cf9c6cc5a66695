"""A tiny model-server stand-in exposing /metrics on 127.0.0.1, with knobs to fail or hang."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

from inference_gateway.api.manifests import ResourceSet
from inference_gateway.api.types import EndpointPickerRef, InferencePool, ObjectRef, Pod
from inference_gateway.datastore.store import Datastore


@dataclass
class FakeEngine:
    waiting: int = 0
    running: int = 0
    kv: float = 0.0
    model: str = "base-model"
    adapters: tuple[str, ...] = ()
    status: int = 200
    hang_s: float = 0.0
    requests: int = 0
    peers: set[tuple[str, int]] = field(default_factory=set)
    server: TestServer | None = None

    def page(self) -> str:
        labels = f'model_name="{self.model}"'
        return (
            "# TYPE vllm:num_requests_waiting gauge\n"
            f"vllm:num_requests_waiting{{{labels}}} {self.waiting}\n"
            "# TYPE vllm:num_requests_running gauge\n"
            f"vllm:num_requests_running{{{labels}}} {self.running}\n"
            "# TYPE vllm:kv_cache_usage_perc gauge\n"
            f"vllm:kv_cache_usage_perc{{{labels}}} {self.kv}\n"
            "# TYPE vllm:lora_requests_info gauge\n"
            f'vllm:lora_requests_info{{max_lora="2",running_lora_adapters="{",".join(self.adapters)}",'
            'waiting_lora_adapters=""} 1.0\n'
        )

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.peers.add(tuple(peer[:2]))
        if self.hang_s:
            await asyncio.sleep(self.hang_s)
        if self.status != 200:
            return web.Response(status=self.status, text="engine unhealthy")
        return web.Response(text=self.page(), content_type="text/plain")

    async def start(self, port: int | None = None) -> int:
        app = web.Application()
        app.router.add_get("/metrics", self.handle)
        self.server = TestServer(app, host="127.0.0.1", port=port)
        await self.server.start_server()
        assert self.server.port is not None
        return self.server.port

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None


def store_for_ports(ports: list[int], labels: dict[str, str] | None = None) -> Datastore:
    """One pod on 127.0.0.1 serving every port: one endpoint per fake engine."""
    store = Datastore()
    pool_ref = ObjectRef("default", "pool")
    store.replace_all(
        ResourceSet(
            pools=[InferencePool(pool_ref, {"app": "llm"}, tuple(ports), EndpointPickerRef("epp"))],
            pods=[Pod(ObjectRef("default", "pod"), "127.0.0.1", {"app": "llm", **(labels or {})})],
        )
    )
    return store
