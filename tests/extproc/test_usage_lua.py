"""usage.lua inside the real Envoy finds what the EPP's UsageScanner finds, on vLLM's wire formats
(non-streamed JSON, SSE with stream_options.include_usage), with the usage object split across
body chunks; the gRPC access log carries it (and the chunk count and first-byte time) to the
EPP's reader (extproc/access_log.summary_of)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import orjson
import pytest
import yaml
from aiohttp import web
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc

from inference_gateway.envoy.access_log import grpc_access_log, usage_filter
from inference_gateway.envoy.bootstrap import EnvoyConfig
from inference_gateway.envoy.clusters import EPP_CLUSTER
from inference_gateway.envoy.process import envoy_binary
from inference_gateway.extproc.access_log import summary_of
from inference_gateway.local.stack import free_port
from inference_gateway.requestcontrol.usage import UsageScanner
from tests.flowcontrol.test_usage import chat_completion, sse_stream

pytestmark = pytest.mark.e2e

GAP_S = 0.03  # between a body's chunks, so Envoy forwards each on its own

# What vLLM sends (OpenAI server, pydantic field order; prompt_tokens_details null).
VLLM_JSON = (
    b'{"id":"cmpl-9","object":"text_completion","created":1733440000,"model":"m","choices":[{"index":0,'
    b'"text":" a b c","logprobs":null,"finish_reason":"length","stop_reason":null,"prompt_logprobs":null}],'
    b'"service_tier":null,"system_fingerprint":null,"usage":{"prompt_tokens":12,"total_tokens":15,'
    b'"completion_tokens":3,"prompt_tokens_details":null},"kv_transfer_params":null}'
)
VLLM_SSE = [
    b'data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1733440000,"model":"m",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n',
    b'data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1733440000,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":" a"},"logprobs":null,"finish_reason":null}]}\n\n',
    b'data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1733440000,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":" b"},"logprobs":null,"finish_reason":"length",'
    b'"stop_reason":null}]}\n\n',
    b'data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1733440000,"model":"m",'
    b'"choices":[],'
    b'"usage":{"prompt_tokens":12,"total_tokens":14,"completion_tokens":2}}\n\n',
    b"data: [DONE]\n\n",
]


def cut(body: bytes, *marks: bytes) -> list[bytes]:
    """`body` split in the middle of each mark (in order)."""
    parts, pos = [], 0
    for mark in marks:
        at = body.index(mark, pos) + len(mark) // 2
        parts.append(body[pos:at])
        pos = at
    return [*parts, body[pos:]]


TRAP = chat_completion('the JSON was {"usage": {"prompt_tokens": 999}} ok')
CASES: dict[str, list[bytes]] = {
    "vllm-json": [VLLM_JSON],
    "vllm-json-split": cut(VLLM_JSON, b'"usage"', b'"completion_tokens"'),
    "vllm-sse": VLLM_SSE,
    "vllm-sse-usage-split": [*VLLM_SSE[:3], *cut(VLLM_SSE[3], b'"usa', b'"total_tokens":14'), VLLM_SSE[4]],
    "details": [chat_completion()],
    "details-split": cut(chat_completion(), b'"prompt_tokens_details"', b'"cached_tokens"'),
    "sse": [sse_stream()[i : i + 40] for i in range(0, len(sse_stream()), 40)],
    "trap": cut(TRAP, b'{\\"usage', b'"usage"'),
    "no-usage": [sse_stream(include_usage=False)],
    "null-usage": [b'data: {"choices":[],"usage":null}\n\n', b"data: [DONE]\n\n"],
    "responses-api": [orjson.dumps({"output": [], "usage": {"input_tokens": 3, "output_tokens": 4}})],
}


class Collector(als_pb2_grpc.AccessLogServiceServicer):
    def __init__(self) -> None:
        self.entries: dict[str, accesslog_pb2.HTTPAccessLogEntry] = {}

    async def StreamAccessLogs(
        self,
        request_iterator: AsyncIterator[als_pb2.StreamAccessLogsMessage],
        context: grpc.aio.ServicerContext,
    ) -> als_pb2.StreamAccessLogsResponse:
        async for message in request_iterator:
            for entry in message.http_logs.log_entry:
                self.entries[entry.request.path] = entry
        return als_pb2.StreamAccessLogsResponse()


async def chunked(request: web.Request) -> web.StreamResponse:
    parts = CASES[request.match_info["case"]]
    sse = parts[0].startswith(b"data:")
    resp = web.StreamResponse(headers={"content-type": "text/event-stream" if sse else "application/json"})
    await resp.prepare(request)
    for i, part in enumerate(parts):
        if i:
            await asyncio.sleep(GAP_S)
        await resp.write(part)
    await resp.write_eof()
    return resp


def envoy_yaml(listen: int, backend: int, als: int) -> dict[str, object]:
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
        "HttpConnectionManager",
        "stat_prefix": "t",
        "access_log": [grpc_access_log(EnvoyConfig(access_log_flush_ms=5))],
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "b",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "b"}}],
                }
            ]
        },
        "http_filters": [
            usage_filter(),
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            },
        ],
    }

    def cluster(name: str, port: int, h2: bool) -> dict[str, object]:
        c: dict[str, object] = {
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [
                    {
                        "lb_endpoints": [
                            {
                                "endpoint": {
                                    "address": {
                                        "socket_address": {"address": "127.0.0.1", "port_value": port}
                                    }
                                }
                            }
                        ]
                    }
                ],
            },
        }
        if h2:
            c["typed_extension_protocol_options"] = {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}},
                }
            }
        return c

    listener = {
        "name": "l",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
        ],
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [listener],
            "clusters": [cluster("b", backend, False), cluster(EPP_CLUSTER, als, True)],
        },
    }


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, accesslog_pb2.HTTPAccessLogEntry]:
    """Every case through Envoy once; the access-log entry of each, by path."""
    return asyncio.run(through_envoy(tmp_path_factory.mktemp("lua")))


async def through_envoy(workdir: Path) -> dict[str, accesslog_pb2.HTTPAccessLogEntry]:
    collector = Collector()
    server = grpc.aio.server()
    als_pb2_grpc.add_AccessLogServiceServicer_to_server(collector, server)
    als_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    app = web.Application()
    app.router.add_get("/{case}", chunked)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    backend_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    listen = free_port()
    config = workdir / "envoy.yaml"
    config.write_text(yaml.safe_dump(envoy_yaml(listen, backend_port, als_port)))
    proc = await asyncio.create_subprocess_exec(
        envoy_binary(),
        "-c",
        str(config),
        "--use-dynamic-base-id",
        "--concurrency",
        "1",
        "--log-level",
        "warning",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 20
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{listen}/no-usage") as resp:
                        await resp.read()
                        break
                except aiohttp.ClientError:
                    assert time.monotonic() < deadline and proc.returncode is None, "envoy did not start"
                    await asyncio.sleep(0.1)
            await asyncio.gather(*(fetch(session, f"http://127.0.0.1:{listen}/{case}") for case in CASES))
        deadline = time.monotonic() + 10
        while len(collector.entries) < len(CASES):
            assert time.monotonic() < deadline, f"logged only {sorted(collector.entries)}"
            await asyncio.sleep(0.05)
        return collector.entries
    finally:
        proc.terminate()
        await proc.wait()
        await runner.cleanup()
        await server.stop(None)


async def fetch(session: aiohttp.ClientSession, url: str) -> None:
    async with session.get(url) as resp:
        assert resp.status == 200
        await resp.read()


@pytest.mark.parametrize("case", sorted(CASES))
def test_lua_finds_the_usage_the_scanner_finds(
    case: str, logged: dict[str, accesslog_pb2.HTTPAccessLogEntry]
) -> None:
    parts = CASES[case]
    scanner = UsageScanner()
    for part in parts:
        scanner.feed(part)
    assert (scanner.usage is None) == (case in ("no-usage", "null-usage"))
    summary = summary_of(logged[f"/{case}"])
    assert summary.usage == scanner.usage
    # each write reached Envoy as its own chunk: the split cases really were split
    assert summary.chunks == len(parts)
    assert summary.status == 200 and summary.body_bytes == sum(map(len, parts))
    assert summary.first_byte_s is not None and 0 <= summary.first_byte_s <= summary.duration_s
    # the last chunk came (len(parts) - 1) gaps after the first
    assert summary.duration_s - summary.first_byte_s >= (len(parts) - 1) * GAP_S * 0.9 - 0.002
