"""Upstream's EPP flags (cmd/epp/runner, v1.5.0): parsed as pflag does, with upstream's defaults,
and each one we honour has the effect its help promises."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc
import orjson
import pytest
import trustme
from aiohttp import web
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference_gateway.api.types import ObjectRef
from inference_gateway.commands.epp_flags import go_duration, parse
from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.epp import EndpointPicker
from inference_gateway.extproc.server import serve
from inference_gateway.metrics.extract import metrics_from_page
from inference_gateway.metrics.mappings import MappingRegistry
from inference_gateway.metrics.scraper import ScrapeConfig, Scraper
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from tests.compat.stack import CHART_CONFIG
from tests.extproc.test_extproc_protocol import exchange, headers_msg
from tests.helpers import make_store

ENV = {"NAMESPACE": "from-env"}


def test_inferencepool_chart_arguments_parse_to_upstreams_meaning() -> None:
    flags = parse(
        [
            "--pool-name", "vllm-qwen3-32b", "--pool-namespace", "inference",
            "--pool-group", "inference.networking.k8s.io", "--zap-encoder", "json",
            "--config-file", str(CHART_CONFIG), "--v", "1", "--tracing=false",
        ],
        ENV,
    )  # fmt: skip
    cmd = flags.command
    assert (cmd.pool_name, cmd.pool_namespace, cmd.pool_group) == (
        "vllm-qwen3-32b",
        "inference",
        "inference.networking.k8s.io",
    )
    assert cmd.config_text == CHART_CONFIG.read_text()
    assert flags.json_logs and flags.log_level == "info"
    assert cmd.otlp_endpoint is None  # --tracing=false
    # upstream's defaults: TLS on, subset hint honoured, ports 9002/9003/9090
    assert cmd.secure_serving and cmd.subset_filter
    assert (cmd.grpc_port, cmd.health_port, cmd.metrics_port) == (9002, 9003, 9090)
    # --metrics-endpoint-auth defaults to true upstream; we cannot authenticate, and say so once
    assert len(flags.warnings) == 1 and "metrics-endpoint-auth" in flags.warnings[0]


def test_standalone_and_engine_chart_arguments_parse() -> None:
    flags = parse(
        [
            "--endpoint-selector", "app=vllm-qwen3-32b,env=prod", "--endpoint-target-ports", "8000,8001",
            '--total-queued-requests-metric="sglang:num_queue_reqs"',
            "--kv-cache-usage-percentage-metric", "sglang:token_usage",
            "--lora-info-metric", "", "--metrics-endpoint-auth=false", "--tracing=true",
        ],
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4317"},
    )  # fmt: skip
    cmd = flags.command
    assert cmd.endpoint_selector == "app=vllm-qwen3-32b,env=prod" and cmd.endpoint_target_ports == (
        8000,
        8001,
    )
    assert cmd.pool_namespace == "default"  # no flag, no $NAMESPACE
    assert cmd.metric_specs == {"queue": '"sglang:num_queue_reqs"', "kv": "sglang:token_usage", "lora": ""}
    assert cmd.otlp_endpoint == "http://otel:4317"  # --tracing exports to OTEL_EXPORTER_OTLP_ENDPOINT
    assert flags.warnings == []


@pytest.mark.parametrize(
    ("args", "level"),
    [([], "info"), (["-v", "4"], "debug"), (["--v=5"], "debug"), (["--zap-log-level=debug"], "debug")],
)
def test_verbosity_flags_set_the_log_level(args: list[str], level: str) -> None:
    assert parse(["--pool-name", "p", *args], ENV).log_level == level


def test_pflag_booleans_and_go_durations() -> None:
    cmd = parse(["--pool-name", "p", "--ha-enable-leader-election", "--secure-serving=false"], ENV).command
    assert cmd.leader_election and not cmd.secure_serving and cmd.pool_namespace == "from-env"
    assert go_duration("50ms") == pytest.approx(0.05) and go_duration("1m30s") == 90.0


@pytest.mark.parametrize(
    "args",
    [
        ["--pool-name", "p", "--no-such-flag"],
        ["--pool-name", "p", "--refresh-metrics-interval", "fast"],
        ["--pool-name", "p", "--endpoint-selector", "a=b"],
        ["--endpoint-selector", "a=b"],  # no --endpoint-target-ports
        ["--pool-name", "p", "--model-server-metrics-scheme", "ftp"],
        ["--pool-name", "p", "--secure-serving=maybe"],
    ],
)
def test_bad_flags_are_one_line_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(args, ENV)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_flags_without_effect_warn_one_line_each() -> None:
    flags = parse(
        [
            "--pool-name",
            "p",
            "--enable-pprof=true",
            "--enable-cert-reload",
            "--zap-devel",
            "--metrics-endpoint-auth=false",
        ],
        ENV,
    )
    assert len(flags.warnings) == 3 and all("\n" not in w for w in flags.warnings)
    assert {w.split()[0] for w in flags.warnings} == {"--enable-pprof", "--enable-cert-reload", "--zap-devel"}


def test_scrape_and_request_flags_reach_the_epp() -> None:
    cmd = parse(
        [
            "--pool-name", "p", "--refresh-metrics-interval", "250ms", "--metrics-staleness-threshold", "5s",
            "--metrics-scrape-timeout", "300ms",
            "--model-server-metrics-path", "/prometheus/metrics", "--model-server-metrics-scheme", "https",
            "--model-server-metrics-https-insecure-skip-verify=false", "--disable-endpoint-subset-filter",
            "--reject-unknown-models", "--default-model", "base-model",
        ],
        ENV,
    ).command  # fmt: skip
    epp = EndpointPicker(cmd.options())
    scrape = epp.scraper.config
    assert (scrape.interval_s, scrape.stale_after_s, scrape.path, scrape.scheme) == (
        0.25,
        5.0,
        "/prometheus/metrics",
        "https",
    )
    assert scrape.insecure_skip_verify is False
    assert scrape.timeout_s == 0.3
    assert epp.director.subset_filter is False
    assert epp.director.resolver.strict_models and epp.director.resolver.default_model == "base-model"


def test_metric_flags_replace_the_default_engines_specs() -> None:
    page = "sglang:num_queue_reqs 7\nsglang:num_running_reqs 3\nsglang:token_usage 0.5\n"
    registry = MappingRegistry().with_default_specs(
        {"queue": '"sglang:num_queue_reqs"', "running": "sglang:num_running_reqs", "kv": "sglang:token_usage"}
    )
    metrics = metrics_from_page(page, registry.for_labels({}))
    assert (metrics.waiting_queue, metrics.running_requests, metrics.kv_cache_usage) == (7, 3, 0.5)


async def test_insecure_skip_verify_decides_whether_https_scrapes_trust_the_pod(tmp_path: Path) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    app = web.Application()

    async def page(_: web.Request) -> web.Response:
        return web.Response(text="vllm:num_requests_waiting 4\n")

    app.router.add_get("/metrics", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        results = []
        for insecure in (True, False):
            scraper = Scraper(make_store(0), ScrapeConfig(scheme="https", insecure_skip_verify=insecure))
            endpoint = Endpoint("pod", ObjectRef("ns", "pod"), "127.0.0.1", port, {})
            results.append(await scraper.scrape_endpoint(endpoint))
            await scraper.stop()
        assert results == [True, False]
    finally:
        await runner.cleanup()


async def test_health_checking_serves_grpc_health_on_the_ext_proc_port() -> None:
    director = Director(make_store(), PoolRuntime(load_config(), flow_control=False))
    for enabled in (True, False):
        server, port = await serve(director, "127.0.0.1", 0, health_checking=enabled)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                request = health_pb2.HealthCheckRequest(service="envoy.service.ext_proc.v3.ExternalProcessor")
                try:
                    reply = await health_pb2_grpc.HealthStub(channel).Check(request, timeout=2)
                    status = reply.status
                except grpc.aio.AioRpcError as err:
                    status = err.code()
            expected = health_pb2.HealthCheckResponse.SERVING if enabled else grpc.StatusCode.UNIMPLEMENTED
            assert status == expected
        finally:
            await server.stop(0)


async def test_disabled_subset_filter_ignores_the_hint() -> None:
    director = Director(make_store(), PoolRuntime(load_config(), flow_control=False), subset_filter=False)
    server, port = await serve(director, "127.0.0.1", 0)
    hint = struct_pb2.Struct()
    hint.update({"x-gateway-destination-endpoint-subset": ["10.9.9.9:8000"]})
    head = pb.ProcessingRequest(request_headers=headers_msg())
    head.metadata_context.filter_metadata["envoy.lb.subset_hint"].CopyFrom(hint)
    body = orjson.dumps({"model": "base-model", "prompt": "x"})
    msgs = [head, pb.ProcessingRequest(request_body=pb.HttpBody(body=body, end_of_stream=True))]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            responses = await exchange(pb_grpc.ExternalProcessorStub(channel), msgs)
        assert responses[0].HasField("request_headers")  # routed inside the pool, not a 503
    finally:
        await server.stop(0)
