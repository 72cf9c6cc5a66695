"""The response, reported by Envoy's gRPC access log (`EnvoyConfig.response_phases = "access-log"`).

Envoy logs every HTTP stream once when it ends, aborted ones included, and streams the entries
in batches to `envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs`, served on the
ext_proc port. Each entry completes the request's RequestContext, handed to the
ResponseObserver by the routing stream and found by x-request-id, with one
`Director.on_response` call: status, served endpoint, Envoy's timings (first body byte, last
byte sent) and the usage the Lua filter read from the body (envoy/usage.lua). Times are
Envoy's, relative to the request's start, so a batch's delay (up to one flush interval) does
not stretch the latencies the EPP learns; only the in-flight ledger hears of the end that late.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from inference_gateway.envoy.access_log import USAGE_METADATA
from inference_gateway.extproc.observe import ResponseObserver
from inference_gateway.requestcontrol.director import ResponseSummary
from inference_gateway.requestcontrol.usage import Usage

log = logging.getLogger(__name__)


def _seconds(d: duration_pb2.Duration | timestamp_pb2.Timestamp) -> float:
    return d.seconds + d.nanos / 1e9


def _count(fields: struct_pb2.Struct, key: str) -> int:
    """A number usage.lua wrote, 0 when it wrote none."""
    value = fields.fields.get(key)
    return int(value.number_value) if value is not None else 0


def _usage(fields: struct_pb2.Struct) -> Usage | None:
    if "prompt_tokens" not in fields.fields and "completion_tokens" not in fields.fields:
        return None
    prompt, completion = _count(fields, "prompt_tokens"), _count(fields, "completion_tokens")
    total = _count(fields, "total_tokens") or prompt + completion
    return Usage(prompt, completion, total, _count(fields, "cached_tokens"))


def summary_of(entry: accesslog_pb2.HTTPAccessLogEntry) -> ResponseSummary:
    """What the Director needs from one access-log entry."""
    common = entry.common_properties
    start_s = _seconds(common.start_time)
    if common.HasField("duration"):
        duration = _seconds(common.duration)
    elif common.HasField("time_to_last_downstream_tx_byte"):
        duration = _seconds(common.time_to_last_downstream_tx_byte)
    else:
        duration = 0.0
    first_byte: float | None = None
    chunks, usage = 0, None
    found = common.metadata.filter_metadata.get(USAGE_METADATA)
    if found is not None:
        chunks = _count(found, "chunks")
        if "first_byte_ms" in found.fields:  # Envoy's wall clock, as start_time: no skew between them
            first_byte = min(duration, max(0.0, found.fields["first_byte_ms"].number_value / 1000 - start_s))
        usage = _usage(found)
    sock = common.upstream_remote_address.socket_address
    served = f"{sock.address}:{sock.port_value}" if sock.address else None
    response = entry.response
    status = response.response_code.value if response.HasField("response_code") else 0
    return ResponseSummary(status, served, duration, first_byte, chunks, response.response_body_bytes, usage)


class AccessLogServicer(als_pb2_grpc.AccessLogServiceServicer):
    """Envoy's access-log streams (one per Envoy worker thread, long-lived): each HTTP entry
    completes its request's context; entries of requests the EPP did not hand over (rejected,
    FailOpen-routed, answered by the gateway) match none and are dropped."""

    def __init__(self, observer: ResponseObserver) -> None:
        self.observer = observer
        self.entries = 0
        self.unmatched = 0
        self.draining = False
        self._streams: set[asyncio.Task[Any]] = set()

    def drain(self) -> None:
        """Shutting down: end the (never-ending) log streams now rather than let the server's
        grace period run out on them; Envoy opens a new stream at its next flush."""
        self.draining = True
        for task in self._streams:
            task.cancel()

    async def StreamAccessLogs(
        self,
        request_iterator: AsyncIterator[als_pb2.StreamAccessLogsMessage],
        context: grpc.aio.ServicerContext,
    ) -> als_pb2.StreamAccessLogsResponse:
        task = asyncio.current_task()
        if task is None or self.draining:
            return als_pb2.StreamAccessLogsResponse()
        self._streams.add(task)
        peer = context.peer()
        self.observer.connections.log_stream_opened(peer)
        try:
            async for message in request_iterator:
                self.report(message)
        except asyncio.CancelledError:
            if not self.draining:
                raise
            task.uncancel()
        finally:
            self._streams.discard(task)
            if not self.draining:
                self.observer.connections.log_stream_closed(peer)
        return als_pb2.StreamAccessLogsResponse()

    def report(self, message: als_pb2.StreamAccessLogsMessage) -> None:
        """One batch; synchronous, so a batch is applied whole between two routing decisions."""
        for entry in message.http_logs.log_entry:
            self.entries += 1
            ctx = self.observer.ended(entry.request.request_id)
            if ctx is None:
                self.unmatched += 1
            else:
                self.observer.director.on_response(ctx, summary_of(entry))


def add_access_log_service(server: grpc.aio.Server, observer: ResponseObserver) -> AccessLogServicer:
    servicer = AccessLogServicer(observer)
    als_pb2_grpc.add_AccessLogServiceServicer_to_server(servicer, server)
    return servicer
