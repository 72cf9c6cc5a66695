"""The EPP's AccessLogService: each entry of Envoy's gRPC access log completes the context the
routing stream handed over, with Envoy's timings and the Lua filter's usage; entries that match
no context are dropped, and an end that comes before the hand-over still completes it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import orjson
import pytest
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from google.protobuf import struct_pb2

from inference_gateway.api.types import FailureMode
from inference_gateway.envoy.access_log import USAGE_FILTER, USAGE_METADATA
from inference_gateway.envoy.bootstrap import SERVED_HEADER, EnvoyConfig, bootstrap
from inference_gateway.envoy.clusters import EPP_CLUSTER
from inference_gateway.envoy.routing import EXT_PROC
from inference_gateway.extproc.access_log import AccessLogServicer, summary_of
from inference_gateway.extproc.observe import ResponseObserver
from inference_gateway.extproc.server import ExtProcServicer, serve
from inference_gateway.observability.metrics import EPPMetrics
from inference_gateway.requestcontrol.director import Director, RequestContext
from inference_gateway.requestcontrol.usage import Usage
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from tests.helpers import make_store

START_S = 1_733_440_000.25  # the request's start, Envoy's wall clock


def entry(
    request_id: str,
    status: int = 200,
    upstream: str = "10.0.0.1:8000",
    duration_s: float = 2.0,
    usage: dict[str, float] | None = None,
) -> accesslog_pb2.HTTPAccessLogEntry:
    e = accesslog_pb2.HTTPAccessLogEntry()
    e.request.request_id = request_id
    common = e.common_properties
    common.start_time.FromNanoseconds(int(START_S * 1e9))
    common.duration.FromNanoseconds(int(duration_s * 1e9))
    common.time_to_last_downstream_tx_byte.FromNanoseconds(int(duration_s * 1e9))
    if upstream:
        host, port = upstream.split(":")
        common.upstream_remote_address.socket_address.address = host
        common.upstream_remote_address.socket_address.port_value = int(port)
    if status:
        e.response.response_code.value = status
        e.response.response_body_bytes = 1234
    if usage is not None:
        found = struct_pb2.Struct()
        found.update(usage)
        common.metadata.filter_metadata[USAGE_METADATA].CopyFrom(found)
    return e


def batch(*entries: accesslog_pb2.HTTPAccessLogEntry) -> als_pb2.StreamAccessLogsMessage:
    msg = als_pb2.StreamAccessLogsMessage()
    msg.http_logs.log_entry.extend(entries)
    return msg


STREAMED = {
    "chunks": 40,
    "first_byte_ms": (START_S + 0.3) * 1000,
    "prompt_tokens": 12,
    "completion_tokens": 39,
    "total_tokens": 51,
    "cached_tokens": 8,
}


def director() -> Director:
    return Director(make_store(), PoolRuntime(load_config(), flow_control=False))


async def routed(d: Director, request_id: str) -> RequestContext:
    ctx = d.new_context({"x-request-id": request_id})
    await d.route(ctx, orjson.dumps({"model": "base-model", "prompt": "hi", "max_tokens": 5}))
    assert ctx.picked is not None and ctx.picked.in_flight == 1
    return ctx


def test_summary_reads_envoy_timings_and_the_lua_metadata() -> None:
    s = summary_of(entry("a", usage=STREAMED))
    assert (s.status, s.served, s.chunks, s.body_bytes) == (200, "10.0.0.1:8000", 40, 1234)
    assert s.first_byte_s is not None and abs(s.first_byte_s - 0.3) < 1e-6
    assert s.duration_s == 2.0 and s.usage == Usage(12, 39, 51, 8)
    bare = summary_of(entry("b", status=0, upstream="", duration_s=0.5))
    assert (bare.status, bare.served, bare.first_byte_s, bare.chunks, bare.usage) == (0, None, None, 0, None)


async def test_entry_completes_the_handed_over_context() -> None:
    d = director()
    observer = ResponseObserver(d)
    als = AccessLogServicer(observer)
    ctx = await routed(d, "r1")
    observer.expect(ctx)
    served = ctx.picked.address if ctx.picked else ""
    als.report(batch(entry("r1", upstream=served, usage=STREAMED)))
    assert ctx.finished and observer.pending == 0 and ctx.picked is not None and ctx.picked.in_flight == 0
    assert ctx.served is ctx.picked and ctx.response_status == 200
    assert (ctx.prompt_tokens, ctx.completion_tokens, ctx.response_chunks) == (12, 39, 40)
    # Envoy's times, not the batch's arrival: TTFT 0.3 s, end-to-end 2 s after the start
    assert abs(ctx.first_byte_at - ctx.started - 0.3) < 1e-6 and ctx.ended_at - ctx.started == 2.0
    (totals,) = d.usage.totals.values()
    assert (totals.prompt_tokens, totals.completion_tokens, totals.cached_tokens) == (12, 39, 8)
    assert (als.entries, als.unmatched) == (1, 0)


async def test_unknown_request_id_is_dropped_and_others_still_complete() -> None:
    d = director()
    observer = ResponseObserver(d)
    als = AccessLogServicer(observer)
    ctx = await routed(d, "known")
    observer.expect(ctx)
    als.report(batch(entry("rejected-by-the-epp"), entry("known")))
    assert (als.entries, als.unmatched) == (2, 1)
    assert ctx.finished and observer.pending == 0


async def test_aborted_request_releases_its_slot_and_teaches_no_latency() -> None:
    d = director()
    observer = ResponseObserver(d)
    ctx = await routed(d, "gone")
    observer.expect(ctx)
    # the client left before any response: no status, no upstream, no Lua metadata
    AccessLogServicer(observer).report(batch(entry("gone", status=0, upstream="", duration_s=0.7)))
    assert ctx.finished and ctx.picked is not None and ctx.picked.in_flight == 0
    assert ctx.response_status == 0 and ctx.first_byte_at == 0.0 and ctx.usage is None
    assert not d.usage.totals


async def test_an_end_reported_before_the_hand_over_completes_it_at_once() -> None:
    d = director()
    observer = ResponseObserver(d)
    ctx = await routed(d, "raced")
    AccessLogServicer(observer).report(batch(entry("raced")))  # the client left while routing
    observer.expect(ctx)
    assert ctx.finished and observer.pending == 0 and ctx.picked is not None and ctx.picked.in_flight == 0


async def test_an_unclaimed_response_stream_context_is_completed_by_its_entry() -> None:
    d = director()
    observer = ResponseObserver(d)
    ctx = await routed(d, "rewritten")
    observer.expect(ctx, responding=True)  # its response stream never came (upstream failed)
    AccessLogServicer(observer).report(batch(entry("rewritten", status=503)))
    assert ctx.finished and observer.pending == 0 and ctx.response_status == 503


async def test_the_service_shares_the_ext_proc_port() -> None:
    d = director()
    servicer = ExtProcServicer(d)
    server, port = await serve(d, "127.0.0.1", 0, servicer=servicer)
    try:
        ctx = await routed(d, "over-grpc")
        servicer.observer.expect(ctx)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = als_pb2_grpc.AccessLogServiceStub(channel)

            async def messages() -> AsyncIterator[als_pb2.StreamAccessLogsMessage]:
                first = batch(entry("over-grpc", usage=STREAMED))
                first.identifier.log_name = "inference-gateway"
                yield first

            await stub.StreamAccessLogs(messages())
        assert ctx.finished and servicer.access_log is not None and servicer.access_log.entries == 1
    finally:
        await server.stop(None)


def _hcm(cfg: EnvoyConfig) -> dict[str, Any]:
    listener = bootstrap(cfg)["static_resources"]["listeners"][0]
    hcm: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm


def test_access_log_is_the_default_and_only_where_a_route_hands_responses_over() -> None:
    hcm = _hcm(EnvoyConfig(access_log_buffer_bytes=4096))
    names = [f["name"] for f in hcm["http_filters"]]
    assert names == [EXT_PROC, "envoy.filters.http.composite", USAGE_FILTER, "envoy.filters.http.router"]
    routing = hcm["http_filters"][0]["typed_config"]
    assert routing["processing_mode"]["response_body_mode"] == "NONE" and routing["allow_mode_override"]
    als = hcm["access_log"][-1]["typed_config"]["common_config"]
    assert als["grpc_service"]["envoy_grpc"]["cluster_name"] == EPP_CLUSTER
    assert (als["buffer_size_bytes"], als["transport_api_version"]) == (4096, "V3")
    assert hcm["route_config"]["response_headers_to_add"][0]["header"]["key"] == SERVED_HEADER
    # FailOpen alone: the routing stream keeps the response phases; nothing to report by log
    fail_open = _hcm(EnvoyConfig(failure_mode=FailureMode.FAIL_OPEN))
    assert [a["name"] for a in fail_open["access_log"]] == ["envoy.access_loggers.stdout"]
    assert USAGE_FILTER not in [f["name"] for f in fail_open["http_filters"]]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "response_phases",
            "sometimes",
            "response_phases: 'sometimes' is not one of access-log, observe, send",
        ),
        ("access_log_flush_ms", 0, "access_log_flush_ms: 0 must be at least 1"),
    ],
)
def test_bad_settings_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EnvoyConfig(**{field: value})  # type: ignore[arg-type]


async def test_drain_ends_the_open_log_streams_at_once() -> None:
    d = director()
    servicer = ExtProcServicer(d)
    server, port = await serve(d, "127.0.0.1", 0, servicer=servicer)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = als_pb2_grpc.AccessLogServiceStub(channel)
            forever = asyncio.Event()

            async def messages() -> AsyncIterator[als_pb2.StreamAccessLogsMessage]:
                yield batch(entry("x"))
                await forever.wait()  # Envoy keeps its log stream open

            call = stub.StreamAccessLogs(messages())
            als = servicer.access_log
            assert als is not None
            deadline = time.monotonic() + 5
            while als.entries == 0:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            started = time.monotonic()
            servicer.drain()
            await server.stop(5.0)  # no waiting for the grace period
            assert time.monotonic() - started < 2.0
            assert await call.code() == grpc.StatusCode.OK
            forever.set()
    finally:
        await server.stop(None)


async def test_metrics_take_envoy_timings_not_the_batch_arrival() -> None:
    d = director()
    metrics = EPPMetrics(d.store)
    d.observers.append(metrics)
    observer = ResponseObserver(d)
    ctx = await routed(d, "timed")
    observer.expect(ctx)
    AccessLogServicer(observer).report(batch(entry("timed", usage=STREAMED, duration_s=2.0)))
    value = metrics.registry.get_sample_value
    labels = {"model_name": "base-model", "target_model_name": "base-model"}
    assert value("inference_objective_request_duration_seconds_sum", labels) == 2.0
    ttft = value("inference_objective_request_ttft_seconds_sum", labels)
    assert ttft is not None and abs(ttft - 0.3) < 1e-6
    assert value("inference_objective_output_tokens_sum", labels) == 39


async def test_early_ends_are_remembered_briefly_and_boundedly() -> None:
    d = director()
    observer = ResponseObserver(d, max_ended_early=2)
    als = AccessLogServicer(observer)
    als.report(batch(entry("first"), entry("second"), entry("third")))  # only the last 2 kept
    ctx = await routed(d, "first")
    observer.expect(ctx)
    assert not ctx.finished and observer.pending == 1  # forgotten: waits for its own end (or the sweep)
    stale = ResponseObserver(d, ended_early_s=0.0)
    AccessLogServicer(stale).report(batch(entry("old")))
    await asyncio.sleep(0.001)
    stale.ended("newer")  # expires everything older than ended_early_s
    late = await routed(d, "old")
    stale.expect(late)
    assert not late.finished


async def test_a_gateway_connection_gone_ends_what_it_routed_after_the_grace() -> None:
    d = director()
    observer = ResponseObserver(d, peer_grace_s=0.05)
    conns = observer.connections
    ctx_a, ctx_b, ctx_c = await routed(d, "a"), await routed(d, "b"), await routed(d, "c")
    observer.expect(ctx_a, peer="ipv4:127.0.0.1:1")
    observer.expect(ctx_b, peer="ipv4:127.0.0.1:1")
    observer.expect(ctx_c, peer="ipv4:127.0.0.1:2")
    conns.log_stream_opened("ipv4:127.0.0.1:1")
    conns.log_stream_opened("ipv4:127.0.0.1:2")
    assert observer.ended("b") is ctx_b  # claimed by its entry: no longer the peer's
    assert conns.in_flight("ipv4:127.0.0.1:1") == 1

    # A stream Envoy merely reset and reopened within the grace ends nothing.
    conns.log_stream_closed("ipv4:127.0.0.1:1")
    conns.log_stream_opened("ipv4:127.0.0.1:1")
    await asyncio.sleep(0.1)
    assert not ctx_a.finished

    conns.log_stream_closed("ipv4:127.0.0.1:1")
    assert not ctx_a.finished  # not before the grace
    await asyncio.sleep(0.1)
    assert ctx_a.finished and ctx_a.picked is not None and ctx_a.picked.in_flight == 0
    assert not ctx_c.finished and observer.pending == 1  # another connection's request stays
    assert observer.ended("a") is None  # its late entry (if any) matches nothing
