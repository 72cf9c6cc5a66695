"""Prefix sync over Redis pub/sub, for deployments that already run Redis (needs the `redis` package).

Every replica publishes its batches (the same bytes as the gRPC stream) to one channel and
applies what the others publish; its own messages come back to it and are skipped by
origin. Pub/sub keeps no history, like the gRPC stream: a replica that was away misses
what was said meanwhile. Either side reconnects with backoff when Redis goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from inference_gateway.observability.tls import TLSFiles
from inference_gateway.scheduling.prefix_sync.grpc_transport import LinkOptions
from inference_gateway.scheduling.prefix_sync.hub import PrefixSyncHub
from inference_gateway.scheduling.prefix_sync.updates import UpdateQueue, encode_batch

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "inference-gateway:prefix-sync"


def client_kwargs(tls: TLSFiles | None) -> dict[str, Any]:
    """TLS settings for a rediss:// URL: the CA to trust and this replica's client certificate."""
    if tls is None:
        return {}
    return {
        "ssl_ca_certs": str(tls.ca) if tls.ca else None,
        "ssl_certfile": str(tls.cert),
        "ssl_keyfile": str(tls.key),
    }


class RedisLink:
    """Publishes this replica's updates to `channel` and applies every other replica's."""

    def __init__(
        self,
        hub: PrefixSyncHub,
        url: str,
        channel: str,
        options: LinkOptions,
        tls: TLSFiles | None = None,
    ) -> None:
        self.hub = hub
        self.url = url
        self.channel = channel
        self.options = options
        self.queue = UpdateQueue(options.queue_limit)
        self.connected = False
        self._kwargs = client_kwargs(tls)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.hub.add_outbox(self.queue)
        self._tasks = [
            asyncio.create_task(self._forever(self._publish), name="prefix-sync-redis-pub"),
            asyncio.create_task(self._forever(self._subscribe), name="prefix-sync-redis-sub"),
        ]

    async def stop(self) -> None:
        self.hub.remove_outbox(self.queue)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _forever(self, session: Any) -> None:
        delay = self.options.backoff_initial_s
        while True:
            client = redis.from_url(self.url, **self._kwargs)
            try:
                await session(client)
            except (RedisError, OSError) as exc:
                log.info("prefix sync: redis %s: %r", self.url, exc)
            except Exception:  # keep the link alive whatever a session ran into
                log.warning("prefix sync: redis %s: unexpected error", self.url, exc_info=True)
            finally:
                self._set_connected(False)
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.options.backoff_max_s)

    async def _publish(self, client: redis.Redis) -> None:
        opts, hub, stats = self.options, self.hub, self.hub.stats
        await client.ping()
        while True:
            updates = hub.fresh(await self.queue.take(opts.batch_max, opts.flush_interval_s))
            if not updates:
                continue
            try:
                await client.publish(self.channel, encode_batch(hub.origin, updates))
            except BaseException:
                stats.dropped["lost"] += len(updates)
                raise
            stats.sent += len(updates)
            stats.batches_sent += 1

    async def _subscribe(self, client: redis.Redis) -> None:
        async with client.pubsub() as pubsub:
            await pubsub.subscribe(self.channel)
            self._set_connected(True)
            log.info("prefix sync: subscribed to %s on %s", self.channel, self.url)
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                batch = self.hub.decode(message["data"])
                if batch is not None:
                    await self.hub.apply_gently(batch)

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self.hub.stats.peers_connected += 1 if connected else -1
