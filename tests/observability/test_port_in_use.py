"""A second EPP on a port already in use fails instead of silently sharing it (no SO_REUSEPORT)."""

from __future__ import annotations

import pytest

from inference_gateway.datastore.store import Datastore
from inference_gateway.observability.server import HealthServer


async def test_second_health_server_on_the_same_port_fails() -> None:
    first = HealthServer(Datastore(), "127.0.0.1", 0)
    port = await first.start()
    try:
        with pytest.raises(RuntimeError, match="Failed to bind"):
            await HealthServer(Datastore(), "127.0.0.1", port).start()
    finally:
        await first.stop()
