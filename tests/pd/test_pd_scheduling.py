"""The P/D profile handler, role filters and deciders, alone and through the director."""

from __future__ import annotations

import orjson
import pytest

from inference_gateway.api.manifests import ResourceSet
from inference_gateway.api.types import EndpointPickerRef, InferenceModel, InferencePool, ObjectRef, Pod
from inference_gateway.datastore.store import Datastore
from inference_gateway.requestcontrol.director import Director, RoutingDecision
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import ConfigError, load_config
from inference_gateway.scheduling.plugins.by_role_filter import ROLE_LABEL, DecodeFilter, PrefillFilter
from inference_gateway.scheduling.plugins.pd_profile_handler import PREFILL_HEADER
from inference_gateway.scheduling.types import CycleState
from inference_gateway.simulator.disagg import PREFILL_HEADER as SIM_PREFILL_HEADER
from tests.pd.helpers import MODEL, endpoint, pd_config, request

LONG = "The quarterly report covers revenue, churn and hiring plans across all regions. " * 50
SHORT = "Say hi."

FLEET = [
    endpoint("prefill-0", "10.0.1.1", "prefill"),
    endpoint("prefill-1", "10.0.1.2", "prefill"),
    endpoint("decode-0", "10.0.2.1", "decode"),
    endpoint("decode-1", "10.0.2.2", "decode"),
    endpoint("plain-0", "10.0.3.1", None),  # no role label: a decode pod, as in llm-d
]
ROLE = {e.address: e.labels.get(ROLE_LABEL) for e in FLEET}


def test_gateway_and_simulator_agree_on_the_header_name() -> None:
    assert PREFILL_HEADER == SIM_PREFILL_HEADER == "x-prefiller-host-port"


@pytest.mark.parametrize(
    ("role", "prefill", "decode"),
    [
        ("prefill", True, False),
        ("decode", False, True),
        ("both", True, True),
        ("prefill-decode", True, True),
        (None, False, True),
        ("encode", False, False),
    ],
)
def test_role_filters_follow_llm_d_labels(role: str | None, prefill: bool, decode: bool) -> None:
    ep = endpoint("pod", "10.0.0.9", role)
    state, req = CycleState(), request(SHORT)
    assert bool(PrefillFilter().filter(state, req, [ep])) is prefill
    assert bool(DecodeFilter().filter(state, req, [ep])) is decode


async def test_long_prompt_gets_one_prefill_and_one_decode_endpoint_by_role() -> None:
    runtime = PoolRuntime(load_config(pd_config(threshold=256)))
    for i in range(8):
        req = request(f"Document {i}. " + LONG, request_id=f"r{i}")  # nothing cached anywhere
        decision = await runtime.decide(req, lambda: FLEET)
        result = decision.result
        assert result.primary_profile == "decode"
        assert all(ROLE[e.address] in ("decode", None) for e in result.endpoints)
        prefill = result.profiles["prefill"].picked
        assert prefill and ROLE[prefill[0].address] == "prefill"
        assert decision.set_headers == {PREFILL_HEADER: prefill[0].address}
        assert decision.strip_headers == ()
        decision.complete()


async def test_without_prefill_pods_the_request_is_served_aggregated() -> None:
    runtime = PoolRuntime(load_config(pd_config()))
    decoders = [e for e in FLEET if ROLE[e.address] != "prefill"]
    decision = await runtime.decide(request(LONG), lambda: decoders)
    assert decision.endpoints[0] in decoders
    assert not decision.result.profiles["prefill"].picked
    assert decision.set_headers == {}
    assert decision.strip_headers == (PREFILL_HEADER,)


async def test_short_prompt_skips_prefill_below_the_threshold() -> None:
    runtime = PoolRuntime(load_config(pd_config(threshold=256)))
    decision = await runtime.decide(request(SHORT), lambda: FLEET)
    assert "prefill" not in decision.result.profiles
    assert decision.set_headers == {}
    assert decision.strip_headers == (PREFILL_HEADER,)
    # the same threshold lets a long prompt through
    long_decision = await runtime.decide(request(LONG), lambda: FLEET)
    assert long_decision.result.profiles["prefill"].picked


def test_prompt_cached_on_the_decode_endpoint_is_not_disaggregated() -> None:
    scheduler = load_config(pd_config(threshold=256)).scheduler
    first = request(LONG + " first question?", request_id="a")
    result, state = scheduler.schedule(first, FLEET)
    scheduler.bind(state, first, result)
    decode = result.endpoints[0]
    follow_up = request(LONG + " and a follow-up?", request_id="b")
    result2, _ = scheduler.schedule(follow_up, FLEET)
    assert result2.endpoints[0] is decode  # prefix affinity
    assert "prefill" not in result2.profiles  # < 256 tokens not cached there
    fresh = request("A different long document. " * 200, request_id="c")
    assert load_config(pd_config(threshold=256)).scheduler.schedule(fresh, FLEET)[0].profiles["prefill"]


def test_legacy_threshold_counts_non_cached_characters() -> None:
    config = pd_config().replace("    deciderPluginName: prefix-based-pd-decider", "    threshold: 1000")
    scheduler = load_config(config).scheduler
    assert "prefill" not in scheduler.schedule(request("x" * 999), FLEET)[0].profiles
    assert scheduler.schedule(request("x" * 1000), FLEET)[0].profiles["prefill"].picked


async def test_both_role_pod_picked_for_both_profiles_prefills_itself() -> None:
    runtime = PoolRuntime(load_config(pd_config()))
    both = [endpoint("both-0", "10.0.4.1", "both")]
    decision = await runtime.decide(request(LONG), lambda: both)
    assert decision.result.profiles["prefill"].picked == decision.endpoints[:1]
    assert decision.set_headers == {} and decision.strip_headers == (PREFILL_HEADER,)


def test_disagg_profile_handler_spelling_and_its_missing_decider() -> None:
    newer = pd_config().replace(
        "- type: pd-profile-handler\n  parameters:\n    deciderPluginName: prefix-based-pd-decider",
        "- type: disagg-profile-handler\n  parameters:\n    deciders: {prefill: prefix-based-pd-decider}",
    )
    assert "disagg-profile-handler" in newer
    scheduler = load_config(newer).scheduler
    assert scheduler.schedule(request(LONG), FLEET)[0].profiles["prefill"].picked
    without = newer.replace("    deciders: {prefill: prefix-based-pd-decider}", "    profiles: {}")
    scheduler = load_config(without).scheduler
    assert "prefill" not in scheduler.schedule(request(LONG), FLEET)[0].profiles


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("- name: prefill\n", "- name: prefill-stage\n", "'prefill'"),
        ("deciderPluginName: prefix-based-pd-decider", "deciderPluginName: nope", "'nope'"),
        ("deciderPluginName: prefix-based-pd-decider", "deciderPluginName: queue-scorer", "not a P/D"),
        (
            "deciderPluginName: prefix-based-pd-decider",
            "deciderPluginName: prefix-based-pd-decider\n    threshold: 5",
            "not both",
        ),
        ("deciderPluginName: prefix-based-pd-decider", "primaryPort: 8200", "primaryPort"),
        ("nonCachedTokens: 0", "nonCachedTokens: -1", "nonCachedTokens"),
    ],
)
def test_config_errors_name_the_problem(old: str, new: str, message: str) -> None:
    text = pd_config()
    assert old in text
    with pytest.raises(ConfigError, match=message):
        load_config(text.replace(old, new))


# --- through the director: what Envoy is told --------------------------------------------

POOL = ObjectRef("default", "pool")


def pd_director(roles: dict[str, str], threshold: int = 0) -> Director:
    store = Datastore()
    pods = [
        Pod(ObjectRef("default", name), f"10.0.0.{i + 1}", {"app": "llm", ROLE_LABEL: role})
        for i, (name, role) in enumerate(roles.items())
    ]
    store.replace_all(
        ResourceSet(
            pools=[InferencePool(POOL, {"app": "llm"}, (8000,), EndpointPickerRef("epp"))],
            models=[InferenceModel(ObjectRef("default", "m"), MODEL, POOL)],
            pods=pods,
        )
    )
    return Director(store, PoolRuntime(load_config(pd_config(threshold)), flow_control=False))


async def route(director: Director, prompt: str, headers: dict[str, str] | None = None) -> RoutingDecision:
    ctx = director.new_context(headers or {})
    decision = await director.route(ctx, orjson.dumps({"model": MODEL, "prompt": prompt, "max_tokens": 3}))
    director.on_complete(ctx)
    return decision


async def test_director_routes_to_decode_and_names_the_prefill_pod() -> None:
    director = pd_director({"p": "prefill", "d": "decode"})
    decision = await route(director, LONG)
    assert decision.destination == "10.0.0.2:8000"
    assert decision.headers[PREFILL_HEADER] == "10.0.0.1:8000"
    assert PREFILL_HEADER not in decision.remove_headers


async def test_director_strips_a_client_sent_prefill_header_when_aggregated() -> None:
    director = pd_director({"p": "prefill", "d": "decode"}, threshold=1000)
    decision = await route(director, SHORT, {PREFILL_HEADER: "169.254.169.254:80"})
    assert decision.destination == "10.0.0.2:8000"
    assert PREFILL_HEADER not in decision.headers
    assert decision.remove_headers == (PREFILL_HEADER,)
