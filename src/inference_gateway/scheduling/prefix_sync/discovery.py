"""Where the other EPP replicas are: a static list, or a (headless Service) DNS name resolved periodically."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Protocol


class PeerSource(Protocol):
    async def resolve(self) -> set[str]:
        """Current peer addresses as host:port; may include this replica (it is detected and skipped)."""
        ...


@dataclass(frozen=True)
class StaticPeers:
    addresses: tuple[str, ...]

    async def resolve(self) -> set[str]:
        return set(self.addresses)


@dataclass(frozen=True)
class DnsPeers:
    """Every A/AAAA record of `name` (a headless Service gives one per ready EPP pod), at `port`."""

    name: str
    port: int

    async def resolve(self) -> set[str]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.name, self.port, type=socket.SOCK_STREAM)
        return {join_host_port(str(info[4][0]), self.port) for info in infos}


def split_host_port(address: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port); raises ValueError naming the address."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"peer address must be host:port, got {address!r}")
    return host.strip("[]"), int(port)


def join_host_port(host: str, port: int) -> str:
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = False
    return f"[{host}]:{port}" if is_v6 else f"{host}:{port}"


def dns_peers(target: str) -> DnsPeers:
    host, port = split_host_port(target)
    return DnsPeers(host, port)
