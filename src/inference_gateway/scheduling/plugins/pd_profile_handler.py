"""Disaggregated prefill/decode: pick a decode endpoint and, when it pays, a prefill endpoint.

Mirrors llm-d's inference scheduler (pkg/plugins/profile/pd_profile_handler.go and
pre-request/pd_prerequest.go):

1. the `decode` profile runs first and its pick is the primary destination (Envoy routes the
   request there);
2. a decider looks at the request and the decode pick; if it says disaggregate, the
   `prefill` profile runs;
3. the prefill pick goes to the decode server in the `x-prefiller-host-port: ip:port`
   request header; the decode server has that pod prefill and pulls the KV cache from it.

Without a usable prefill pick (no prefill pods, the decider declined, or the prefill profile
chose the decode endpoint itself) the request is served aggregated: no header, and a
client-sent one is stripped.

Parameters (`pd-profile-handler`, llm-d's names): `decodeProfile` (decode),
`prefillProfile` (prefill), `deciderPluginName` (a decider defined in `plugins`), or the
older inline `threshold` (non-cached prompt characters below which P/D is skipped, 0 =
always) with `prefixPluginName` (prefix-cache-scorer) and `hashBlockSize` (default: the
scorer's block size), and `primaryPort` (only 0: data-parallel port rewriting is not
supported). `disagg-profile-handler` is llm-d's newer spelling: `profiles: {prefill,
decode, encode}` and `deciders: {prefill: <decider>, encode: <decider>}`; without a prefill
decider it never disaggregates prefill, as in llm-d.

Encode disaggregation (E/P/D, `disagg-profile-handler` with `deciders.encode`, usually
`always-disagg-multimodal-decider`): after the decode pick, when the encode decider says so,
the `encode` profile runs (typically `encode-filter` over pods labelled `llm-d.ai/role:
encode`) and its picks go to the decode server in `x-encoder-hosts-ports: ip:port[,ip:port]`;
the decode server (llm-d's sidecar) sends each image or audio item there to be encoded and
reads the encoder output instead of running its own encoder. Both deciders run once, right
after the decode profile.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_int, get_str
from inference_gateway.scheduling.plugins.pd_decider import (
    DEFAULT_PREFIX_PLUGIN,
    PDDecider,
    PrefixBasedPDDecider,
)
from inference_gateway.scheduling.registry import PluginHandle
from inference_gateway.scheduling.types import (
    CycleState,
    ProfileResult,
    SchedulingRequest,
    SchedulingResult,
)

PREFILL_HEADER = "x-prefiller-host-port"
ENCODER_HEADER = "x-encoder-hosts-ports"
DEFAULT_DECODE_PROFILE = "decode"
DEFAULT_PREFILL_PROFILE = "prefill"
DEFAULT_ENCODE_PROFILE = "encode"


def prefill_endpoint(result: SchedulingResult, prefill_profile: str) -> Endpoint | None:
    """The prefill pick, if the request is disaggregated (a prefill pod other than the decode pod)."""
    prefill = result.profiles.get(prefill_profile)
    if prefill is None or not prefill.picked:
        return None
    primary = result.profiles.get(result.primary_profile)
    if primary is not None and primary.picked and primary.picked[0] is prefill.picked[0]:
        return None
    return prefill.picked[0]


def prefill_headers(result: SchedulingResult, prefill_profile: str) -> dict[str, str]:
    endpoint = prefill_endpoint(result, prefill_profile)
    return {PREFILL_HEADER: endpoint.address if endpoint is not None else ""}


def encoder_headers(result: SchedulingResult, encode_profile: str) -> dict[str, str]:
    encode = result.profiles.get(encode_profile)
    picked = encode.picked if encode is not None else []
    return {ENCODER_HEADER: ",".join(e.address for e in picked)}


class PdProfileHandler:
    type_name = "pd-profile-handler"

    def __init__(
        self,
        name: str = type_name,
        decider: PDDecider | None = None,
        decode_profile: str = DEFAULT_DECODE_PROFILE,
        prefill_profile: str = DEFAULT_PREFILL_PROFILE,
        encode_decider: PDDecider | None = None,
        encode_profile: str = DEFAULT_ENCODE_PROFILE,
    ) -> None:
        self.name = name
        self.decider = decider
        self.decode_profile = decode_profile
        self.prefill_profile = prefill_profile
        self.encode_decider = encode_decider
        self.encode_profile = encode_profile

    @classmethod
    def from_params(cls, name: str, params: dict[str, Any], handle: PluginHandle) -> PdProfileHandler:
        if get_int(params, "primaryPort", 0, minimum=0) != 0:
            raise ValueError("parameter 'primaryPort' (data-parallel port rewriting) is not supported")
        threshold = get_int(params, "threshold", 0, minimum=0)
        decider_name = get_str(params, "deciderPluginName", "")
        if decider_name and threshold:
            raise ValueError("set either 'deciderPluginName' or 'threshold', not both")
        decider: PDDecider
        if decider_name:
            decider = _decider(handle, decider_name)
        else:
            block = get_int(params, "hashBlockSize", 0, minimum=0)
            prefix = get_str(params, "prefixPluginName", DEFAULT_PREFIX_PLUGIN)
            decider = PrefixBasedPDDecider(f"{name}-threshold", threshold, prefix, handle, block or None)
        decode = get_str(params, "decodeProfile", DEFAULT_DECODE_PROFILE)
        prefill = get_str(params, "prefillProfile", DEFAULT_PREFILL_PROFILE)
        return cls(name, decider, decode, prefill)

    def check_profiles(self, names: Collection[str]) -> None:
        # Without a prefill decider (llm-d's disagg handler with no `deciders.prefill`) only the
        # decode profile runs, so only it is required.
        needed = [self.decode_profile]
        needed += [self.prefill_profile] if self.decider else []
        needed += [self.encode_profile] if self.encode_decider else []
        missing = [p for p in needed if p not in names]
        if missing:
            raise ValueError(f"needs schedulingProfiles named {', '.join(repr(m) for m in missing)}")

    def pick_profiles(
        self,
        state: CycleState,
        request: SchedulingRequest,
        profiles: Sequence[str],
        done: dict[str, ProfileResult],
    ) -> list[str]:
        decode = done.get(self.decode_profile)
        if decode is None:
            return [self.decode_profile]
        if len(done) > 1 or not decode.picked:
            return []  # the deciders have had their say
        stages = ((self.encode_decider, self.encode_profile), (self.decider, self.prefill_profile))
        return [p for d, p in stages if d is not None and d.decide(state, request, decode.picked[0])]

    def primary(self, results: dict[str, ProfileResult]) -> str:
        return self.decode_profile

    def request_headers(self, request: SchedulingRequest, result: SchedulingResult) -> dict[str, str]:
        headers = prefill_headers(result, self.prefill_profile)
        if self.encode_decider is not None:
            headers |= encoder_headers(result, self.encode_profile)
        return headers


class DisaggProfileHandler(PdProfileHandler):
    """llm-d's `disagg-profile-handler` parameters over the same behaviour."""

    type_name = "disagg-profile-handler"

    @classmethod
    def from_params(cls, name: str, params: dict[str, Any], handle: PluginHandle) -> PdProfileHandler:
        profiles = _mapping(params, "profiles")
        deciders = _mapping(params, "deciders")
        unknown = (set(profiles) - {"prefill", "decode", "encode"}) | (set(deciders) - {"prefill", "encode"})
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(sorted(unknown))} in profiles/deciders")
        decider_name = deciders.get("prefill", "")
        decider = _decider(handle, decider_name) if decider_name else None
        encode_name = deciders.get("encode", "")
        encode_decider = _decider(handle, encode_name) if encode_name else None
        decode = profiles.get("decode", DEFAULT_DECODE_PROFILE)
        prefill = profiles.get("prefill", DEFAULT_PREFILL_PROFILE)
        encode = profiles.get("encode", DEFAULT_ENCODE_PROFILE)
        return cls(name, decider, decode, prefill, encode_decider, encode)


class PrefillHeaderHandler:
    """llm-d's `prefill-header-handler`: the same header as the profile handler sets, for
    configs that list it (setting it twice is harmless)."""

    type_name = "prefill-header-handler"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name
        self.prefill_profile = get_str(parameters or {}, "prefillProfile", DEFAULT_PREFILL_PROFILE)

    def request_headers(self, request: SchedulingRequest, result: SchedulingResult) -> dict[str, str]:
        return prefill_headers(result, self.prefill_profile)


class DisaggHeadersHandler(PrefillHeaderHandler):
    type_name = "disagg-headers-handler"


def _decider(handle: PluginHandle, name: str) -> PDDecider:
    plugin = handle.plugin(name)
    if plugin is None:
        raise ValueError(f"decider {name!r} names no plugin defined above it")
    if not isinstance(plugin, PDDecider):
        raise ValueError(f"plugin {name!r} ({plugin.type_name}) is not a P/D decider")
    return plugin


def _mapping(params: dict[str, Any], key: str) -> dict[str, str]:
    value = params.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"parameter {key!r} must be a mapping of names, got {value!r}")
    return value
