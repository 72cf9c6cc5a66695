"""The EPP's side ports: Prometheus `/metrics` over HTTP and `grpc.health.v1` over gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from inference_gateway.datastore.store import Datastore

log = logging.getLogger(__name__)

EXTPROC_SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor"


Page = Callable[[web.Request], Awaitable[web.StreamResponse]]


class MetricsServer:
    def __init__(
        self, registry: CollectorRegistry, host: str, port: int, pages: Sequence[tuple[str, Page]] = ()
    ) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self.pages = list(pages)  # more GET routes beside /metrics (the status page)
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        for path, handler in self.pages:
            app.router.add_get(path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None:
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self.port

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class HealthServer:
    """grpc.health.v1: `liveness` is always SERVING; readiness (the default service, the ext_proc
    service name and `readiness`) follows `ready()` — by default, the datastore having synced."""

    READINESS_SERVICES = ("", EXTPROC_SERVICE, "inference-extension", "readiness")

    def __init__(
        self,
        store: Datastore,
        host: str,
        port: int,
        ready: Callable[[], bool] | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.store = store
        self.reuse_port = reuse_port
        self.host = host
        self.port = port
        self.ready = ready or (lambda: store.synced)
        self.servicer = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        # No SO_REUSEPORT unless this is one of an EPP's workers (which share the port): a second
        # EPP on the same health port must fail, not share it.
        self._server = grpc.aio.server(options=[("grpc.so_reuseport", int(self.reuse_port))])
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, self._server)
        self.port = self._server.add_insecure_port(f"{self.host}:{self.port}")
        await self._server.start()
        await self.servicer.set("liveness", health_pb2.HealthCheckResponse.SERVING)
        self._task = asyncio.create_task(self._track(), name="health-tracker")
        return self.port

    async def _track(self) -> None:
        last = None
        while True:
            serving = health_pb2.HealthCheckResponse.SERVING
            status = serving if self.ready() else health_pb2.HealthCheckResponse.NOT_SERVING
            if status != last:
                for service in self.READINESS_SERVICES:
                    await self.servicer.set(service, status)
                last = status
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._server is not None:
            await self._server.stop(0.5)
