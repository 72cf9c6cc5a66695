"""Ports for children: drawn where the kernel's outgoing connections never land, or bound by the
child itself (port 0), so a busy machine cannot take them between the pick and the bind."""

from __future__ import annotations

import socket
from pathlib import Path

from inference_gateway.local.stack import LocalStack, free_port


def test_free_port_is_below_the_ephemeral_range_and_bindable() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(10_000 <= p < low for p in ports)
    assert len(ports) > 1  # drawn, not one fixed port every caller collides on
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.pop()))


async def test_gateway_port_zero_is_bound_by_envoy_and_reported(stack: LocalStack) -> None:
    # The `stack` fixture asks for gateway port 0: Envoy binds it, the stack learns which.
    assert stack.envoy is not None and stack.gateway_port == stack.envoy.listen_port != 0
    with socket.create_connection(("127.0.0.1", stack.gateway_port), timeout=5):
        pass
