"""The virtual-time driver and the ext_proc path take the same decisions.

Two gateways are built from the same EndpointPickerConfig text over the same pods: one is the
virtual-time driver (`VirtualGateway.pick_pd`, as the fleet calls it); the other's Director is
served by the real gRPC ext_proc server and asked by a real gRPC client, as Envoy asks. Both see
the same metrics snapshots (landed by the same metrics source at the same virtual time), the
same request headers and bodies, and the same in-flight state: every ext_proc stream stays open
while its request is in flight, and requests end on both sides at the same points. Each request's
endpoint order (primary, then fallbacks) and its P/D prefill header must be identical.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2 as mode_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.envoy.filters import EXT_PROC_ROLE, ROUTE_OBSERVED_ROLE
from inference_gateway.extproc.server import serve
from inference_gateway.requestcontrol.director import DESTINATION_KEY, DESTINATION_NAMESPACE
from inference_gateway.scheduling.plugins.pd_profile_handler import PREFILL_HEADER
from inference_gateway.simulator.fleet_types import EndpointSnapshot, RequestResult, SimRequest
from inference_gateway.simulator.gateway import VirtualGateway, seeded_config

MODEL = "meta-llama/Llama-2-7b-hf"
PREFIX = """
plugins:
- type: prefix-cache-scorer
  parameters: {blockSize: 16}
- type: queue-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: prefix-cache-scorer, weight: 2}
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: max-score-picker}
"""
LORA = """
plugins:
- type: lora-affinity-scorer
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: max-score-picker
  parameters: {maxNumOfEndpoints: 3}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: lora-affinity-scorer}
  - {pluginRef: queue-scorer}
  - {pluginRef: kv-cache-utilization-scorer}
  - {pluginRef: max-score-picker}
"""
PD = """
plugins:
- type: queue-scorer
- type: prefix-cache-scorer
- type: max-score-picker
- type: prefill-filter
- type: decode-filter
- type: prefix-based-pd-decider
  parameters: {nonCachedTokens: 8}
- type: pd-profile-handler
  parameters: {deciderPluginName: prefix-based-pd-decider}
schedulingProfiles:
- name: prefill
  plugins: [{pluginRef: prefill-filter}, {pluginRef: queue-scorer}, {pluginRef: max-score-picker}]
- name: decode
  plugins:
  - {pluginRef: decode-filter}
  - {pluginRef: queue-scorer}
  - {pluginRef: prefix-cache-scorer, weight: 2}
  - {pluginRef: max-score-picker}
"""
PD_ROLES = ("prefill", "prefill", "decode", "decode", "decode")


@dataclass
class Case:
    config: str | None  # None: the EPP's built-in default profile
    roles: Sequence[str | None] = ()
    adapters: int = 0  # requests ask for lora-0..n-1, servers hold some of them
    shared_prefixes: int = 3
    servers: int = 5
    requests: int = 40
    extra: dict[str, object] = field(default_factory=dict)


CASES = {
    "default": Case(None),
    "prefix": Case(PREFIX, shared_prefixes=4),
    "lora": Case(LORA, adapters=4),
    "pd": Case(PD, roles=PD_ROLES),
}


def snapshots(rng: random.Random, n: int, t: float, adapters: int) -> list[EndpointSnapshot]:
    names = [f"lora-{a}" for a in range(adapters)]
    return [
        EndpointSnapshot(
            index=i,
            name=f"sim-{i}",
            model=MODEL,
            updated_at=t,
            waiting_queue=rng.choice((0, 0, 1, 3, 8)),
            running_requests=rng.randrange(0, 20),
            kv_cache_usage=rng.choice((0.1, 0.3, 0.3, 0.6, 0.95)),
            active_adapters=frozenset(rng.sample(names, min(2, adapters))),
            waiting_adapters=frozenset(),
            max_active_adapters=2 if adapters else 0,
            block_size=16,
            num_gpu_blocks=4000,
            prefix_cache_hit_rate=0.0,
            num_preemptions=0,
        )
        for i in range(n)
    ]


def requests(rng: random.Random, case: Case) -> list[SimRequest]:
    prefixes = [f"<system {g}> " + "shared instructions " * 12 for g in range(case.shared_prefixes)]
    out = []
    for i in range(case.requests):
        model = f"lora-{rng.randrange(case.adapters)}" if case.adapters else None
        prompt = rng.choice(prefixes) + f"question {i} " * rng.randrange(1, 30)
        priority = rng.choice((0, 0, 0, 1, -1))
        out.append(SimRequest(i, 0.05 * i, len(prompt) // 4, 16, model, None, prompt, priority))
    return out


class ExtProcClient:
    """One open ext_proc stream per request in flight, as Envoy keeps them; or, `reported` (our
    envoy-config's default), the routing stream alone, each request's end reported by an
    access-log entry as Envoy's gRPC access log sends it."""

    def __init__(self, channel: grpc.aio.Channel, reported: bool = False) -> None:
        self.stub = pb_grpc.ExternalProcessorStub(channel)
        self.access_log = als_pb2_grpc.AccessLogServiceStub(channel)
        self.reported = reported
        self.open: dict[int | str, tuple[asyncio.Event, grpc.aio.StreamStreamCall]] = {}

    async def route(
        self, request_id: int | str, headers: dict[str, str], body: bytes
    ) -> tuple[list[str], str]:
        """(endpoint order, prefill header) from the answer to the request body."""
        done = asyncio.Event()

        async def messages() -> AsyncIterator[pb.ProcessingRequest]:
            mode = (
                mode_pb2.ProcessingMode.FULL_DUPLEX_STREAMED
                if self.reported
                else mode_pb2.ProcessingMode.BUFFERED
            )
            config = pb.ProtocolConfiguration(request_body_mode=mode)
            all_headers = {":method": "POST", ":path": "/v1/completions", **headers}
            header_map = base_pb2.HeaderMap(
                headers=[base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in all_headers.items()]
            )
            yield pb.ProcessingRequest(
                request_headers=pb.HttpHeaders(headers=header_map), protocol_config=config
            )
            yield pb.ProcessingRequest(request_body=pb.HttpBody(body=body, end_of_stream=True))
            await done.wait()  # the request is in flight until its stream ends

        if self.reported:
            call = self.stub.Process(messages(), metadata=((EXT_PROC_ROLE, ROUTE_OBSERVED_ROLE),))
            answer = await call.read()
        else:
            call = self.stub.Process(messages())
            first = await call.read()
            assert first.WhichOneof("response") == "request_headers"
            answer = await call.read()
        if answer.WhichOneof("response") == "immediate_response":
            done.set()
            await call.code()
            return [], ""
        self.open[request_id] = (done, call)
        meta = answer.dynamic_metadata.fields[DESTINATION_NAMESPACE].struct_value
        order = meta.fields[DESTINATION_KEY].string_value.split(",")
        kind = "request_headers" if self.reported else "request_body"
        mutation = getattr(answer, kind).response.header_mutation
        if self.reported:  # routed: the routing stream ends, the request stays in flight
            done.set()
            while await call.read() is not grpc.aio.EOF:  # the body's answer
                pass
        set_headers = {h.header.key: h.header.raw_value.decode() for h in mutation.set_headers}
        return order, set_headers.get(PREFILL_HEADER, "")

    async def finish(self, request_id: int | str, duration_s: float = 0.0) -> None:
        done, call = self.open.pop(request_id)
        done.set()
        await call.code()  # the server has completed the request when the call ends
        if self.reported:
            entry = accesslog_pb2.HTTPAccessLogEntry()
            entry.request.request_id = str(request_id)
            entry.response.response_code.value = 500
            entry.common_properties.duration.FromNanoseconds(int(duration_s * 1e9))
            batch = als_pb2.StreamAccessLogsMessage()
            batch.http_logs.log_entry.append(entry)

            async def one() -> AsyncIterator[als_pb2.StreamAccessLogsMessage]:
                yield batch

            await self.access_log.StreamAccessLogs(one())  # answered once the batch is applied


def driver_route(
    gateway: VirtualGateway, request: SimRequest, snaps: list[EndpointSnapshot]
) -> tuple[list[str], str]:
    pick = gateway.pick_pd(request, snaps)
    if pick is None:
        return [], ""
    ctx = gateway._in_flight[request.request_id]
    prefill = "" if pick.prefill is None else gateway.endpoints[pick.prefill].address
    return [e.address for e in ctx.endpoints], prefill


@pytest.mark.parametrize("reported", [False, True], ids=["stream-open", "access-log"])
@pytest.mark.parametrize("name", sorted(CASES))
async def test_ext_proc_and_the_virtual_time_driver_decide_alike(name: str, reported: bool) -> None:
    case = CASES[name]
    text = seeded_config(case.config, seed=11)
    driver = VirtualGateway(text, roles=case.roles)
    twin = VirtualGateway(text, roles=case.roles)  # its Director is the one ext_proc serves
    server, port = await serve(twin.director, "127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    client = ExtProcClient(channel, reported)
    rng = random.Random(name)
    in_flight: list[SimRequest] = []
    decided: list[list[str]] = []
    prefills: list[str] = []
    try:
        for request in requests(rng, case):
            if request.request_id % 4 == 0:  # a fresh scrape lands on both
                snaps = snapshots(rng, case.servers, request.arrival, case.adapters)
            if in_flight and rng.random() < 0.4:  # a request ends on both sides
                ended = in_flight.pop(rng.randrange(len(in_flight)))
                failed = RequestResult(ended.request_id, 0, ended.arrival, -1, request.arrival, 1, 0)
                failed.status = "error"
                driver.on_finished(failed)
                await client.finish(ended.request_id, request.arrival - ended.arrival)
            twin.now = request.arrival
            twin.sync(snaps)
            headers, body = twin.headers_for(request), twin.body_for(request, snaps)
            via_ext_proc = await client.route(request.request_id, headers, body)
            via_driver = driver_route(driver, request, snaps)
            assert via_ext_proc == via_driver, f"request {request.request_id}"
            if via_driver[0]:
                in_flight.append(request)
                decided.append(via_driver[0])
                prefills.append(via_driver[1])
            assert [e.in_flight for e in twin.endpoints] == [e.in_flight for e in driver.endpoints]
        # The comparison is not vacuous: requests were routed, to more than one endpoint.
        assert len(decided) >= case.requests // 2
        assert len({order[0] for order in decided}) > 1
        if case.roles:  # some requests were disaggregated, some not
            assert any(prefills) and not all(prefills)
    finally:
        for request_id in list(client.open):
            await client.finish(request_id)
        await channel.close()
        await server.stop(0)
