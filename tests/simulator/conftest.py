from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.server import SimulatedServer

ServerFactory = Callable[..., Awaitable[SimulatedServer]]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    started: list[SimulatedServer] = []

    async def make(**kw: Any) -> SimulatedServer:
        server = SimulatedServer(ServerConfig(**kw))
        await server.start("127.0.0.1", 0)
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()
