"""Prefix sync over gRPC, with no generated code: one client-streaming method carrying raw bytes.

    service inference_gateway.prefixsync.v1.PrefixSync {
      rpc Push(stream Batch) returns (Empty);   // Batch: see updates.py; Empty: zero bytes
    }

Each replica dials every peer and pushes its own updates; it never forwards what it
received. Both sides name themselves in metadata (`x-prefix-sync-origin`): a replica that
reaches itself (a headless Service lists every pod, this one too) sees its own name in the
server's initial metadata and stops dialling that address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from inference_gateway.scheduling.prefix_sync.hub import PrefixSyncHub
from inference_gateway.scheduling.prefix_sync.updates import IndexUpdate, UpdateQueue, encode_batch

log = logging.getLogger(__name__)

SERVICE = "inference_gateway.prefixsync.v1.PrefixSync"
PUSH = f"/{SERVICE}/Push"
ORIGIN_KEY = "x-prefix-sync-origin"
SELF_DETAILS = "prefix-sync: this address is the receiving replica itself"
MAX_MESSAGE = 32 * 1024 * 1024
CHANNEL_OPTIONS: list[tuple[str, str | int]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


def push_handler(hub: PrefixSyncHub) -> grpc.GenericRpcHandler:
    async def push(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
        metadata = {k: v for k, v in context.invocation_metadata() or ()}
        await context.send_initial_metadata(((ORIGIN_KEY, hub.origin),))
        if metadata.get(ORIGIN_KEY) == hub.origin:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, SELF_DETAILS)
        async for data in requests:
            batch = hub.decode(data)
            if batch is not None:
                await hub.apply_gently(batch)
        return b""

    handler = grpc.stream_unary_rpc_method_handler(push)  # no (de)serializers: bytes in, bytes out
    return grpc.method_handlers_generic_handler(SERVICE, {"Push": handler})


async def serve_sync(
    hub: PrefixSyncHub, host: str, port: int, credentials: grpc.ServerCredentials | None = None
) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE)])
    server.add_generic_rpc_handlers((push_handler(hub),))
    address = f"{host}:{port}"
    bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    await server.start()
    return server, bound


@dataclass(frozen=True)
class LinkOptions:
    batch_max: int = 256  # updates per message
    flush_interval_s: float = 0.02  # how long the first queued update waits for company
    queue_limit: int = 65_536  # updates held per peer; beyond it the oldest are dropped
    connect_timeout_s: float = 2.0
    backoff_initial_s: float = 0.05
    backoff_max_s: float = 2.0
    credentials: grpc.ChannelCredentials | None = None
    server_name: str | None = None  # TLS name to verify when peers are dialled by IP


class PeerLink:
    """Streams this replica's updates to one peer; reconnects with backoff while the peer is away."""

    def __init__(self, address: str, hub: PrefixSyncHub, options: LinkOptions) -> None:
        self.address = address
        self.hub = hub
        self.options = options
        self.queue = UpdateQueue(options.queue_limit)
        self.connected = False
        self.is_self = False
        self.peer_origin = ""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.hub.add_outbox(self.queue)
        self._task = asyncio.create_task(self._run(), name=f"prefix-sync-{self.address}")

    async def stop(self) -> None:
        self.hub.remove_outbox(self.queue)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = self.options.backoff_initial_s
        while True:
            try:
                if await self._session():
                    delay = self.options.backoff_initial_s
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.FAILED_PRECONDITION and err.details() == SELF_DETAILS:
                    self._retire_as_self()
                    return
                log.info("prefix sync: peer %s: %s", self.address, err.code().name)
            except (TimeoutError, asyncio.InvalidStateError) as exc:
                log.debug("prefix sync: peer %s: %r", self.address, exc)
            except Exception:  # keep the link alive whatever a session ran into
                log.warning("prefix sync: peer %s: unexpected error", self.address, exc_info=True)
            if self.is_self:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.options.backoff_max_s)

    def _retire_as_self(self) -> None:
        self.is_self = True
        self.hub.remove_outbox(self.queue)
        self.queue.clear()
        log.info("prefix sync: %s is this replica; not dialling it", self.address)

    def _channel(self) -> grpc.aio.Channel:
        opts: list[tuple[str, str | int]] = list(CHANNEL_OPTIONS)
        if self.options.credentials is None:
            return grpc.aio.insecure_channel(self.address, options=opts)
        if self.options.server_name:
            opts.append(("grpc.ssl_target_name_override", self.options.server_name))
        return grpc.aio.secure_channel(self.address, self.options.credentials, options=opts)

    async def _session(self) -> bool:
        """One connection's life; True if it got as far as streaming."""
        opts, hub = self.options, self.hub
        async with self._channel() as channel:
            await asyncio.wait_for(channel.channel_ready(), opts.connect_timeout_s)
            call = channel.stream_unary(PUSH)(metadata=((ORIGIN_KEY, hub.origin),))
            try:
                meta = await asyncio.wait_for(call.initial_metadata(), opts.connect_timeout_s)
                self.peer_origin = str(dict(meta or ()).get(ORIGIN_KEY, ""))
                if self.peer_origin == hub.origin:
                    self._retire_as_self()
                    return True
                self._set_connected(True)
                log.info("prefix sync: streaming to %s (%s)", self.address, self.peer_origin)
                await self._stream(call)
            finally:
                self._set_connected(False)
                call.cancel()
        return True

    async def _stream(self, call: grpc.aio.StreamUnaryCall[bytes, bytes]) -> None:
        """Write batches until the call ends; the call is watched while idle, so a vanished
        peer is noticed at once rather than at the next write."""
        ended: asyncio.Future[bytes] = asyncio.ensure_future(call)
        take: asyncio.Future[list[IndexUpdate]] | None = None
        try:
            while True:
                take = asyncio.ensure_future(
                    self.queue.take(self.options.batch_max, self.options.flush_interval_s)
                )
                await asyncio.wait((take, ended), return_when=asyncio.FIRST_COMPLETED)
                if not take.done():
                    ended.result()  # raises the RPC's error status
                    return
                await self._write(call, take.result())
        finally:
            ended.cancel()
            if take is not None and not take.done():
                take.cancel()  # take() pops nothing until it returns, so nothing is lost
                with contextlib.suppress(asyncio.CancelledError):
                    await take

    async def _write(self, call: grpc.aio.StreamUnaryCall[bytes, bytes], batch: list[IndexUpdate]) -> None:
        hub, stats = self.hub, self.hub.stats
        updates = hub.fresh(batch)
        if not updates:
            return
        try:
            await call.write(encode_batch(hub.origin, updates))
        except BaseException:
            stats.dropped["lost"] += len(updates)
            raise
        stats.sent += len(updates)
        stats.batches_sent += 1

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self.hub.stats.peers_connected += 1 if connected else -1
