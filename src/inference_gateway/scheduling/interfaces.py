"""Plugin interfaces, as in upstream's scheduling framework.

A profile runs filters, then weighted scorers (sum of weight x score clamped to 0..1), then a
picker. A profile handler decides which profiles run and which result is primary.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.types import (
    CycleState,
    ProfileResult,
    SchedulingRequest,
    SchedulingResult,
)


@runtime_checkable
class Plugin(Protocol):
    type_name: str
    name: str


@runtime_checkable
class Filter(Plugin, Protocol):
    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        """The endpoints that pass; returning the input unchanged is allowed (and cheapest)."""
        ...


@runtime_checkable
class Scorer(Plugin, Protocol):
    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        """One score in 0..1 per endpoint, aligned with `endpoints`."""
        ...


@runtime_checkable
class AffinityScorer(Scorer, Protocol):
    """A scorer that says where the request's state already is (a cached prefix, a loaded
    adapter, a session), not how loaded a pod is. Late binding (runtime/pool.py) lets a request
    flow control queued wait on a saturated pod when these scorers' lead there is decisive."""

    affinity: bool


@runtime_checkable
class Picker(Plugin, Protocol):
    def pick(self, state: CycleState, endpoints: Sequence[Endpoint], totals: list[float]) -> list[Endpoint]:
        """Endpoints in preference order: the pick first, then fallbacks."""
        ...


@runtime_checkable
class PostPick(Plugin, Protocol):
    """Called once the request is bound to an endpoint (e.g. to update a prefix index)."""

    def on_picked(self, state: CycleState, request: SchedulingRequest, endpoint: Endpoint) -> None: ...


@runtime_checkable
class ResponseHeaders(Plugin, Protocol):
    """Adds headers to the client's response once the serving endpoint is known."""

    def response_headers(self, request: SchedulingRequest, served: Endpoint) -> dict[str, str]: ...


@runtime_checkable
class ResponseMetadata(Plugin, Protocol):
    """Dynamic metadata for the proxy once the response has ended (upstream's ResponseBody
    plugins, e.g. request-attribute-reporter). `usage` is upstream's Usage struct as JSON."""

    def response_metadata(self, usage: Mapping[str, Any]) -> dict[str, dict[str, Any]]: ...


@runtime_checkable
class EndpointsChanged(Plugin, Protocol):
    """Told the full set of endpoint addresses whenever the datastore changes (to drop state)."""

    def endpoints_changed(self, addresses: Collection[str]) -> None: ...


@runtime_checkable
class LatencyFeedback(Plugin, Protocol):
    """Told each request's end with its measured latency (e.g. to train a predictor); None
    where it was not measured (a non-streamed response, an error)."""

    def observe_latency(self, request_id: str, ttft_s: float | None, tpot_s: float | None) -> None: ...


@runtime_checkable
class EndToEndFeedback(Plugin, Protocol):
    """Told a successful request's end-to-end latency just before its LatencyFeedback (e.g.
    predicted-latency-producer, which without streamingMode learns that, as upstream)."""

    def observe_end_to_end(self, request_id: str, e2e_s: float) -> None: ...


@runtime_checkable
class Service(Plugin, Protocol):
    """A plugin with background work (e.g. KV-event subscriptions), started and stopped with
    the EPP."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class RequestHeaders(Plugin, Protocol):
    """Headers for the request Envoy forwards to the model server, once the result is known
    (upstream's PreRequest plugins). An empty value removes the header, so a client cannot
    forge one the gateway owns (e.g. x-prefiller-host-port)."""

    def request_headers(self, request: SchedulingRequest, result: SchedulingResult) -> dict[str, str]: ...


@runtime_checkable
class RequestBody(Plugin, Protocol):
    """Edits the JSON body Envoy forwards to the model server, once the result is known;
    returns True if it changed anything (the director then re-serialises the body)."""

    def request_body(
        self, request: SchedulingRequest, result: SchedulingResult, body: dict[str, Any]
    ) -> bool: ...


@runtime_checkable
class DataProducer(Plugin, Protocol):
    """Upstream's PrepareRequestData plugins: fill in request data before admission and
    scheduling (e.g. the engine's token ids). A failure is logged and the request goes on."""

    async def produce(self, request: SchedulingRequest, body: dict[str, Any]) -> None: ...


@runtime_checkable
class Admitter(Plugin, Protocol):
    """Upstream's AdmitRequest plugins: after flow control, before scheduling, may refuse a
    request (the client gets 429 with the reason)."""

    def admit_request(self, request: SchedulingRequest, endpoints: Sequence[Endpoint]) -> str | None:
        """None admits; a string is the reason for refusing."""
        ...


@runtime_checkable
class RoutesElsewhere(Plugin, Protocol):
    """Sends the request to another address than the picked endpoint's (llm-d's
    data-parallel handler: the pod's primary port, the picked rank in a header)."""

    def route_address(self, endpoint: Endpoint) -> str: ...


@runtime_checkable
class ProfileHandler(Plugin, Protocol):
    def pick_profiles(
        self,
        state: CycleState,
        request: SchedulingRequest,
        profiles: Sequence[str],
        done: dict[str, ProfileResult],
    ) -> list[str]:
        """Profiles to run next; an empty list ends the cycle. `state` holds what the profiles'
        plugins recorded so far (e.g. prefix-cache matches), as upstream's Pick receives it."""
        ...

    def primary(self, results: dict[str, ProfileResult]) -> str: ...


@runtime_checkable
class ChecksProfiles(Protocol):
    """A profile handler that needs particular profiles says so at config load time."""

    def check_profiles(self, names: Collection[str]) -> None:
        """Raise ValueError naming what is missing."""
        ...


@runtime_checkable
class RequestParser(Plugin, Protocol):
    """Named by `parser.pluginRef`: how request bodies are read (upstream's requesthandling parsers).
    `parses_body` False means the body is forwarded untouched and the model comes from headers."""

    parses_body: bool


@runtime_checkable
class BodyReader(Plugin, Protocol):
    """A parser of non-JSON bodies (vllmgrpc-parser, vertexai-parser): what scheduling reads
    from the request, OpenAI-shaped ({"prompt": ...}); None for a request that is not an
    inference request (routed to a random endpoint, unscheduled); ValueError when the body
    cannot be read. The body itself is forwarded untouched."""

    def read_body(self, raw: bytes, headers: Mapping[str, str]) -> dict[str, Any] | None: ...


@runtime_checkable
class SaturationPlugin(Plugin, Protocol):
    """Named by `saturationDetector.pluginRef`: is the pool out of good capacity?"""

    def is_saturated(self, endpoints: Iterable[Endpoint]) -> bool: ...


@runtime_checkable
class DataSource(Plugin, Protocol):
    """A `dataLayer.sources[].pluginRef`: where endpoint data is collected from."""

    def accepts_extractor(self, extractor: Plugin) -> bool: ...


@runtime_checkable
class Extractor(Plugin, Protocol):
    """A `dataLayer.sources[].extractors[].pluginRef`: turns a source's data into endpoint fields."""

    extracts: str


@runtime_checkable
class PreRequest(Plugin, Protocol):
    """Told the whole result once a request is bound, whether or not the plugin is in a profile
    (upstream's PreRequest; e.g. a prefix producer recording the primary pick)."""

    def pre_request(
        self, state: CycleState, request: SchedulingRequest, result: SchedulingResult
    ) -> None: ...


@runtime_checkable
class PrefixCacheConsumer(Plugin, Protocol):
    """Reads the configured approximate prefix cache's matches (linked at config load)."""

    def link_prefix_cache(self, prefix: Any) -> None: ...


# (endpoint address, block hashes, LRU capacity or None) for each index addition after a pick.
IndexListener = Callable[[str, list[int], int | None], None]


@runtime_checkable
class SharedPrefixIndex(Plugin, Protocol):
    """A plugin keeping a prefix index that peer EPP replicas share (prefix_sync) and whose
    size and hit ratio the EPP exports. Additions applied from peers are not reported to
    subscribers, so shared updates never loop."""

    def subscribe(self, listener: IndexListener) -> None: ...

    def unsubscribe(self, listener: IndexListener) -> None: ...

    def add_from_peer(self, hashes: list[int], endpoint: str, capacity: int | None) -> None: ...

    def index_size(self) -> int: ...

    def observe_hits(self, observer: Callable[[int, int], None]) -> None:
        """Call `observer(matched characters, prompt characters)` for each pick."""
        ...
