"""The director: one request's path through the EPP.

ext_proc hands it the request headers and body; it parses the body, resolves the model,
admits the request (flow control), schedules it, and returns the routing decision or an error.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.datastore.store import Datastore
from inference_gateway.flowcontrol import DEFAULT_FLOW_ID, FAIRNESS_HEADER, Admission
from inference_gateway.requestcontrol.body import parse_body, prompt_and_media, requested_model
from inference_gateway.requestcontrol.errors import GatewayError
from inference_gateway.requestcontrol.resolve import ModelResolver, Resolution
from inference_gateway.requestcontrol.usage import Usage, UsageAccounting, UsageKey, UsageScanner
from inference_gateway.runtime import Decision, PoolRuntime, PoolRuntimes
from inference_gateway.scheduling.interfaces import BodyReader
from inference_gateway.scheduling.types import SchedulingRequest, SchedulingResult

log = logging.getLogger(__name__)

EXPLAIN_HEADER = "x-gateway-explain"
REQUEST_ID_HEADER = "x-request-id"
DESTINATION_KEY = "x-gateway-destination-endpoint"
DESTINATION_NAMESPACE = "envoy.lb"


@dataclass
class RequestContext:
    """Everything known about one request, from headers to the last response byte."""

    request_id: str
    headers: dict[str, str]
    started: float = field(default_factory=time.monotonic)
    body_size: int = 0
    resolution: Resolution | None = None
    request: SchedulingRequest | None = None
    decision: Decision | None = None
    # The primary first, then fallbacks (the decision's; a body-less request's random pick).
    endpoints: list[Endpoint] = field(default_factory=list)
    served: Endpoint | None = None
    explain: bool = False
    response_status: int = 0
    explanation: str | None = None
    upstream_headers: dict[str, str] = field(default_factory=dict)
    response_bytes: int = 0
    first_byte_at: float = 0.0  # time.monotonic() of the first response body byte
    response_chunks: int = 0
    # When the response ended (the director's clock): its last byte, as the proxy timed it when
    # the EPP hears of it later (access log), else when the EPP saw it. Set at completion.
    ended_at: float = 0.0
    # Ends the request with an error from outside its own flow (ext_proc sets it; preemption uses it).
    abort: Callable[[GatewayError], None] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Extra headers for the client's response (e.g. a session-affinity token), set once the
    # served endpoint is known; ext_proc adds them to the response headers.
    response_headers: dict[str, str] = field(default_factory=dict)
    # Dynamic metadata for the proxy once the response ended (request-attribute-reporter).
    response_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    finished: bool = False
    flow_id: str = DEFAULT_FLOW_ID
    usage_scanner: UsageScanner | None = None
    usage: Usage | None = None
    # The data plane's endpoint subset hint (envoy.lb.subset_hint); None: the whole pool.
    subset: tuple[str, ...] | None = None
    # The config's parser is passthrough-parser: the body is forwarded untouched, never read.
    passthrough: bool = False

    @property
    def result(self) -> SchedulingResult | None:
        return self.decision.result if self.decision is not None else None

    @property
    def picked(self) -> Endpoint | None:
        return self.endpoints[0] if self.endpoints else None

    @property
    def admission(self) -> Admission | None:
        return self.decision.admission if self.decision is not None else None

    @property
    def scheduling_seconds(self) -> float:
        return self.decision.scheduling_seconds if self.decision is not None else 0.0

    @property
    def queue_seconds(self) -> float:
        return self.decision.queue_seconds if self.decision is not None else 0.0


class RequestObserver(Protocol):
    """Metrics, tracing and logs watch requests through these hooks."""

    def on_routed(self, ctx: RequestContext) -> None: ...

    def on_error(self, ctx: RequestContext, error: GatewayError) -> None: ...

    def on_complete(self, ctx: RequestContext) -> None: ...


@dataclass(frozen=True, slots=True)
class ResponseSummary:
    """A whole response, told after it ended (Envoy's access log; the simulator's model servers).
    Times are seconds after the request started, as the proxy measured them."""

    status: int  # 0: no response (the client went away first, or the upstream reset)
    served: str | None  # the endpoint that answered (after retries), "ip:port"
    duration_s: float  # to the last byte sent to the client (or the stream's end)
    first_byte_s: float | None = None  # first response body byte; None: no body
    chunks: int = 0  # non-empty body chunks: more than one means it streamed
    body_bytes: int = 0
    usage: Usage | None = None


@dataclass
class RoutingDecision:
    destination: str
    headers: dict[str, str]
    body: bytes | None
    metadata: dict[str, Any]
    # Request headers to strip before forwarding (a plugin owns them, e.g. x-prefiller-host-port).
    remove_headers: tuple[str, ...] = ()


class Director:
    """Parses, resolves the pool and asks that pool's runtime for the decision."""

    def __init__(
        self,
        store: Datastore,
        runtimes: PoolRuntimes | PoolRuntime,
        resolver: ModelResolver | None = None,
        max_body_bytes: int = 16 * 1024 * 1024,
        usage: UsageAccounting | None = None,
        subset_filter: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.clock = clock  # request timing; the virtual-time driver gives its own
        if not isinstance(runtimes, PoolRuntimes | PoolRuntime):
            raise TypeError(f"Director takes a PoolRuntime or PoolRuntimes, not {type(runtimes).__name__}")
        self.runtimes = runtimes if isinstance(runtimes, PoolRuntimes) else PoolRuntimes(runtimes)
        self.resolver = resolver or ModelResolver(store)
        self.max_body_bytes = max_body_bytes
        self.observers: list[RequestObserver] = []
        store.on_change(self._on_endpoints_changed)
        self.usage = usage or UsageAccounting()
        self.subset_filter = subset_filter  # honour envoy.lb.subset_hint (upstream's default)
        self._rng = random.Random()

    def new_context(self, headers: dict[str, str]) -> RequestContext:
        rid = headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        explain = headers.get(EXPLAIN_HEADER, "").lower() in ("1", "true", "yes")
        debug = explain or log.isEnabledFor(logging.DEBUG)
        ctx = RequestContext(rid, headers, started=self.clock(), explain=debug)
        ctx.flow_id = headers.get(FAIRNESS_HEADER) or DEFAULT_FLOW_ID
        return ctx

    async def route(self, ctx: RequestContext, raw_body: bytes) -> RoutingDecision:
        """Decide where the request goes; raises GatewayError with the client-facing status."""
        try:
            decision = await self._route(ctx, raw_body)
        except GatewayError as err:
            for observer in self.observers:
                observer.on_error(ctx, err)
            raise
        for observer in self.observers:
            observer.on_routed(ctx)
        decision.headers.update(ctx.upstream_headers)
        return decision

    def route_without_body(self, ctx: RequestContext) -> RoutingDecision:
        """A request Envoy routes before the EPP can see a body (GET /v1/models, body mode NONE):
        any ready endpoint of the pool, at random, as upstream."""
        view = self.resolver.pool_for(ctx.headers)
        ready = [e for e in view.endpoints if e.ready]
        candidates = self._in_subset(ctx, ready or list(view.endpoints))
        if not candidates:
            raise GatewayError(503, f"no endpoints in pool {view.pool.ref}", "no_endpoints")
        ctx.endpoints = [self._rng.choice(candidates)]
        address = ctx.endpoints[0].address
        log.info("request %s without body -> %s", ctx.request_id, address)
        addresses = [e.address for e in ctx.endpoints]
        headers, metadata = _destination_headers(addresses), _destination_metadata(addresses)
        return RoutingDecision(address, headers, None, metadata)

    async def _route(self, ctx: RequestContext, raw_body: bytes) -> RoutingDecision:
        ctx.body_size = len(raw_body)
        if ctx.body_size > self.max_body_bytes:
            raise GatewayError(
                413,
                f"request body is {ctx.body_size} bytes; the limit is {self.max_body_bytes}",
                "body_too_large",
            )
        config = self.runtimes.default.config
        parser = config.parser
        ctx.passthrough = parser is not None and not parser.parses_body
        if (reader := config.body_reader) is not None:
            read = _read_body(reader, raw_body, ctx.headers)
            if read is None:  # not an inference request: a random endpoint, as upstream
                return self.route_without_body(ctx)
            body = read
        else:
            body = {} if ctx.passthrough else parse_body(raw_body)
        res = self.resolver.resolve(requested_model(body), ctx.headers)
        ctx.resolution = res
        pool = str(res.view.pool.ref)
        runtime = self.runtimes.for_pool(pool)
        prompt, media_tokens = prompt_and_media(body, runtime.media.rule_for(res.target_model))
        request = SchedulingRequest(
            request_id=ctx.request_id,
            model=res.model,
            target_model=res.target_model,
            prompt=prompt,
            headers=ctx.headers,
            criticality=res.criticality,
            priority=res.priority,
            body_size=ctx.body_size,
            pool=pool,
            cache_salt=_cache_salt(body),
            messages=body["messages"] if isinstance(body.get("messages"), list) else None,
            media_tokens=media_tokens,
        )
        ctx.request = request

        def candidates() -> Sequence[Endpoint]:
            return self._in_subset(ctx, self._candidates(res))

        candidates()  # 503 at once when the pool (or the subset) has no ready endpoint
        ctx.decision = await runtime.decide(request, candidates, explain=ctx.explain, body=body)
        ctx.endpoints = ctx.decision.endpoints
        if runtime.preemption is not None:
            runtime.preemption.routed(ctx)
            runtime.preemption.make_room(ctx, pool, candidates())
        return self._routing(ctx, body, res)

    def _candidates(self, res: Resolution) -> Sequence[Endpoint]:
        """Ready endpoints with fresh metrics, or every ready one when none is fresh."""
        view = self.store.pool(res.view.pool.ref) or res.view  # it may have changed while queued
        res.view = view
        endpoints = view.endpoints
        if all(e.ready and e.metrics_ok for e in endpoints):
            return endpoints  # the common case: no per-request copy
        ready = [e for e in endpoints if e.ready]
        fresh = [e for e in ready if e.metrics_ok]
        if not ready:
            raise GatewayError(503, f"no ready endpoints in pool {view.pool.ref}", "no_endpoints")
        if not fresh:
            log.warning("pool %s: no endpoint has fresh metrics; scheduling on stale data", view.pool.ref)
            return ready
        return fresh

    def _in_subset(self, ctx: RequestContext, endpoints: Sequence[Endpoint]) -> Sequence[Endpoint]:
        """Only the endpoints the data plane allows; an empty subset is a 503, as upstream."""
        if ctx.subset is None:
            return endpoints
        allowed = set(ctx.subset)
        inside = [e for e in endpoints if e.address in allowed]
        if not inside:
            raise GatewayError(
                503, "no eligible endpoint in the data plane's endpoint subset", "no_endpoints_in_subset"
            )
        return inside

    def _on_endpoints_changed(self) -> None:
        self.runtimes.datastore_changed(self.store)

    def _routing(self, ctx: RequestContext, body: dict[str, Any], res: Resolution) -> RoutingDecision:
        decision = ctx.decision
        assert decision is not None
        addresses = decision.addresses
        destination = ",".join(addresses)
        changed = decision.body_changed and not ctx.passthrough
        if res.target_model != body.get("model") and not ctx.passthrough:
            body["model"] = res.target_model
            changed = True
        new_body = orjson.dumps(body) if changed else None
        if ctx.explain:
            targets = {"model": res.model, "target_model": res.target_model}
            explanation = orjson.dumps({**decision.explain(), **targets}).decode()
            log.debug("request %s decision: %s", ctx.request_id, explanation)
            ctx.explanation = explanation
        log.info(
            "request %s model=%s target=%s criticality=%s -> %s",
            ctx.request_id,
            res.model,
            res.target_model,
            res.criticality.label,
            destination,
        )
        headers = {**_destination_headers(addresses), **decision.set_headers}
        metadata = _destination_metadata(addresses)
        return RoutingDecision(destination, headers, new_body, metadata, decision.strip_headers)

    def on_response_headers(self, ctx: RequestContext, status: int, served: str | None) -> None:
        ctx.response_status = status
        if served:
            ctx.served = self.store.endpoint(served) or ctx.picked
        if ctx.served is not None and ctx.decision is not None:
            ctx.response_headers = ctx.decision.response_headers(ctx.served)

    def on_response_body(self, ctx: RequestContext, chunk: bytes, end_of_stream: bool) -> None:
        """Each response body chunk as Envoy streams it; the last one completes the request."""
        if chunk and not ctx.response_bytes:
            ctx.first_byte_at = self.clock()
        ctx.response_bytes += len(chunk)
        ctx.response_chunks += bool(chunk)
        if ctx.usage_scanner is None:
            ctx.usage_scanner = UsageScanner()
        ctx.usage_scanner.feed(chunk)
        if end_of_stream:
            self.on_complete(ctx)

    def on_response(self, ctx: RequestContext, summary: ResponseSummary) -> None:
        """The whole response at once, after it ended: what on_response_headers, each
        on_response_body and on_complete tell when the EPP sees the response stream by."""
        if ctx.finished:
            return
        self.on_response_headers(ctx, summary.status, summary.served)
        if summary.first_byte_s is not None:
            ctx.first_byte_at = ctx.started + summary.first_byte_s
        ctx.response_chunks = summary.chunks
        ctx.response_bytes = summary.body_bytes
        ctx.usage = summary.usage
        ctx.ended_at = ctx.started + summary.duration_s
        self.on_complete(ctx)

    def on_complete(self, ctx: RequestContext) -> None:
        """Idempotent: the last response chunk, or the ext_proc stream closing, whichever is first."""
        if ctx.finished:
            return
        ctx.finished = True
        ctx.ended_at = ctx.ended_at or self.clock()
        res = ctx.resolution
        if ctx.usage is None and ctx.usage_scanner is not None:
            ctx.usage = ctx.usage_scanner.usage
        if ctx.usage is not None and res is not None:
            ctx.prompt_tokens = ctx.usage.prompt_tokens
            ctx.completion_tokens = ctx.usage.completion_tokens
            self.usage.record(UsageKey(res.model, res.target_model, res.objective, ctx.flow_id), ctx.usage)
        if ctx.decision is not None:
            ctx.response_metadata = ctx.decision.response_metadata(ctx.usage)
            # Streamed responses tell plugins that learn latency (latency-scorer) how it went.
            now = ctx.ended_at
            e2e = now - ctx.started if ctx.response_status == 200 else None
            ctx.decision.complete(*_latency_of(ctx, now), e2e_s=e2e)
            if (preemption := ctx.decision.runtime.preemption) is not None:
                preemption.finished(ctx)
        for observer in self.observers:
            observer.on_complete(ctx)


def _latency_of(ctx: RequestContext, now: float) -> tuple[float | None, float | None]:
    """(TTFT s, TPOT s) of a streamed response; a one-chunk response tells neither."""
    if ctx.response_chunks < 2 or ctx.response_status != 200:
        return None, None
    ttft = ctx.first_byte_at - ctx.started
    tokens = ctx.completion_tokens
    return ttft, (now - ctx.first_byte_at) / (tokens - 1) if tokens > 1 else None


def _destination_headers(addresses: Sequence[str]) -> dict[str, str]:
    """The primary alone: ORIGINAL_DST clusters (upstream's reference Envoy) read one address."""
    return {DESTINATION_KEY: addresses[0]}


def _destination_metadata(addresses: Sequence[str]) -> dict[str, Any]:
    """The ordered list (primary, then fallbacks) for override_host and retries."""
    return {DESTINATION_NAMESPACE: {DESTINATION_KEY: ",".join(addresses)}}


def _cache_salt(body: dict[str, Any]) -> str:
    """vLLM's optional `cache_salt` isolates prefix caches; prefix hashing must honour it."""
    salt = body.get("cache_salt")
    return salt if isinstance(salt, str) else ""


def _read_body(parser: BodyReader, raw: bytes, headers: dict[str, str]) -> dict[str, Any] | None:
    try:
        return parser.read_body(raw, headers)
    except ValueError as exc:
        raise GatewayError(400, f"{parser.type_name}: {exc}", "invalid_body") from None
