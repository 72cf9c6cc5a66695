"""PrefixSync: the gossip runtime one EPP replica runs (server, one link per peer, peer refresh)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import grpc
from prometheus_client import CollectorRegistry

from inference_gateway.observability.tls import TLSFiles, server_credentials
from inference_gateway.scheduling.interfaces import SharedPrefixIndex
from inference_gateway.scheduling.prefix_sync.discovery import PeerSource, StaticPeers, dns_peers
from inference_gateway.scheduling.prefix_sync.grpc_transport import LinkOptions, PeerLink, serve_sync
from inference_gateway.scheduling.prefix_sync.hub import PrefixSyncHub, SyncCollector, prefix_scorers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrefixSyncOptions:
    """How this replica shares its prefix index (see docs/replicas.md).

    peers: static host:port list. peers_dns: "name:port" of a headless Service, resolved every
    `resolve_interval_s` (both may be given; the union is used). tls: this replica's
    certificate and key, used as server and as client certificate, and the CA both sides
    must chain to (mutual TLS); tls_server_name: the name peers' certificates carry, when
    peers are dialled by IP. redis_url: exchange updates through Redis pub/sub instead (no
    gRPC server, no peer list; tls then configures the rediss:// client).
    """

    host: str = "127.0.0.1"
    port: int = 9004
    peers: tuple[str, ...] = ()
    peers_dns: str | None = None
    redis_url: str | None = None  # redis:// or rediss://; replaces the gRPC gossip when set
    redis_channel: str = "inference-gateway:prefix-sync"
    resolve_interval_s: float = 5.0
    batch_max: int = 256
    flush_interval_s: float = 0.02
    queue_limit: int = 65_536
    max_age_s: float = 30.0
    tls: TLSFiles | None = None
    tls_server_name: str | None = None
    replica_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def sources(self) -> list[PeerSource]:
        found: list[PeerSource] = []
        if self.peers:
            found.append(StaticPeers(tuple(self.peers)))
        if self.peers_dns:
            found.append(dns_peers(self.peers_dns))
        return found

    def link_options(self) -> LinkOptions:
        return LinkOptions(
            batch_max=self.batch_max,
            flush_interval_s=self.flush_interval_s,
            queue_limit=self.queue_limit,
            credentials=_channel_credentials(self.tls),
            server_name=self.tls_server_name,
        )


def _channel_credentials(tls: TLSFiles | None) -> grpc.ChannelCredentials | None:
    if tls is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca.read_bytes() if tls.ca else None,
        private_key=tls.key.read_bytes(),
        certificate_chain=tls.cert.read_bytes(),
    )


class RedisLinkLike(Protocol):
    connected: bool

    async def stop(self) -> None: ...


class PrefixSync:
    """Shares the prefix-cache scorers' indexes with peer replicas over gRPC."""

    def __init__(
        self,
        scorers: Mapping[str, SharedPrefixIndex],
        options: PrefixSyncOptions,
        registry: CollectorRegistry | None = None,
        sources: list[PeerSource] | None = None,
    ) -> None:
        self.options = options
        self.hub = PrefixSyncHub(scorers, options.replica_id, max_age_s=options.max_age_s)
        self.sources = sources if sources is not None else options.sources()
        self.links: dict[str, PeerLink] = {}
        self.redis: RedisLinkLike | None = None
        self.port = 0
        self._link_options = options.link_options()
        self._server: grpc.aio.Server | None = None
        self._refresher: asyncio.Task[None] | None = None
        if registry is not None:
            registry.register(SyncCollector(self.hub))

    @classmethod
    def for_plugins(
        cls,
        plugins: Mapping[str, object],
        options: PrefixSyncOptions,
        registry: CollectorRegistry | None = None,
    ) -> PrefixSync:
        return cls(prefix_scorers(plugins), options, registry)

    async def start(self) -> int:
        url = self.options.redis_url
        if url:
            from inference_gateway.scheduling.prefix_sync.redis_transport import RedisLink

            opts = self.options
            self.redis = RedisLink(self.hub, url, opts.redis_channel, self._link_options, opts.tls)
            self.redis.start()
            return 0
        creds = server_credentials(self.options.tls) if self.options.tls else None
        self._server, self.port = await serve_sync(self.hub, self.options.host, self.options.port, creds)
        log.info("prefix sync %s listening on %s:%d", self.hub.origin, self.options.host, self.port)
        await self.refresh_peers()
        if any(not isinstance(s, StaticPeers) for s in self.sources):
            self._refresher = asyncio.create_task(self._refresh_forever(), name="prefix-sync-peers")
        return self.port

    async def stop(self, grace_s: float = 0.5) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self.redis is not None:
            await self.redis.stop()
        for link in list(self.links.values()):
            await link.stop()
        self.links.clear()
        if self._server is not None:
            await self._server.stop(grace_s)
        self.hub.detach()

    async def refresh_peers(self) -> None:
        """Resolve the sources; dial new peers, drop vanished ones. On a resolver error, change nothing."""
        wanted: set[str] = set()
        for source in self.sources:
            try:
                wanted |= await source.resolve()
            except OSError as exc:
                log.warning("prefix sync: resolving %s failed: %s; keeping current peers", source, exc)
                return
        for address in [a for a in self.links if a not in wanted]:
            await self.links.pop(address).stop()
        for address in sorted(wanted - self.links.keys()):
            link = self.links[address] = PeerLink(address, self.hub, self._link_options)
            link.start()

    def connected_peers(self) -> list[str]:
        if self.redis is not None:
            return [self.options.redis_url or ""] if self.redis.connected else []
        return sorted(a for a, link in self.links.items() if link.connected)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.options.resolve_interval_s)
            await self.refresh_peers()
