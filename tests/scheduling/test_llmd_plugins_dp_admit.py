"""llm-d plugin types added for its deploy configs: data-parallel-profile-handler,
probabilistic-admitter, context-length-aware, token-load-scorer. Unit behaviour against
llm-d's formulas, and the two that change routing through the director."""

from __future__ import annotations

import orjson
import pytest
from sched_helpers import MODEL, endpoint, pool_store, request, set_metrics

from inference_gateway.api.types import Criticality
from inference_gateway.requestcontrol.director import Director
from inference_gateway.requestcontrol.errors import GatewayError
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import ConfigError, load_config
from inference_gateway.scheduling.plugins.context_length_aware import ContextLengthAware, range_score
from inference_gateway.scheduling.plugins.probabilistic_admitter import ProbabilisticAdmitter
from inference_gateway.scheduling.plugins.token_load_scorer import TokenLoadScorer
from inference_gateway.scheduling.types import CycleState

HEADER = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n"
SHEDDABLE = "batch-model"


def director_for(config: str, ports: tuple[int, ...] = (8000,)) -> Director:
    store = pool_store(
        {"pod-a": "10.0.0.1", "pod-b": "10.0.0.2"},
        ports=ports,
        models=((MODEL, Criticality.STANDARD), (SHEDDABLE, Criticality.SHEDDABLE)),
    )
    for e in store.endpoints():
        set_metrics(e, waiting_queue=0, kv_cache_usage=0.0)
    return Director(store, PoolRuntime(load_config(HEADER + config), flow_control=False))


def chat(model: str = MODEL) -> bytes:
    return orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})


# --- data-parallel-profile-handler -------------------------------------------------------
DP_CONFIG = """
plugins:
- type: queue-scorer
- type: max-score-picker
- type: data-parallel-profile-handler
  parameters: {primaryPort: 8000}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: queue-scorer}, {pluginRef: max-score-picker}]
"""


async def test_data_parallel_routes_to_primary_port_and_names_the_rank() -> None:
    director = director_for(DP_CONFIG, ports=(8000, 8001, 8002))
    for e in director.store.endpoints():  # only pod-b's rank 2 is idle
        set_metrics(e, waiting_queue=0 if e.address == "10.0.0.2:8002" else 5)
    ctx = director.new_context({})
    decision = await director.route(ctx, chat())
    assert decision.headers["x-data-parallel-host-port"] == "10.0.0.2:8002"
    assert decision.headers["x-gateway-destination-endpoint"] == "10.0.0.2:8000"
    # fallbacks: each pod once, at its primary port
    assert decision.destination == "10.0.0.2:8000,10.0.0.1:8000"
    assert ctx.picked is not None and ctx.picked.address == "10.0.0.2:8002"  # the ledger's rank
    director.on_complete(ctx)


def test_data_parallel_needs_one_profile_and_a_valid_port() -> None:
    two = DP_CONFIG + "- name: other\n  plugins: [{pluginRef: queue-scorer}]\n"
    with pytest.raises(ConfigError, match="requires exactly one scheduling profile, got 2"):
        load_config(HEADER + two)
    with pytest.raises(ConfigError, match="primaryPort: must be between 1 and 65535"):
        load_config(HEADER + DP_CONFIG.replace("primaryPort: 8000", "primaryPort: 70000"))
    with pytest.raises(ConfigError, match="unknown parameter"):
        load_config(HEADER + DP_CONFIG.replace("primaryPort: 8000", "primaryPrt: 8000"))


# --- probabilistic-admitter -----------------------------------------------------------------
ADMIT_CONFIG = """
plugins:
- type: probabilistic-admitter
- type: random-picker
- type: utilization-detector
  parameters: {queueDepthThreshold: 999999999, kvCacheUtilThreshold: 1.0}
saturationDetector: {pluginRef: utilization-detector}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: random-picker}]
"""


def test_admitter_formula_matches_llm_d() -> None:
    draws = iter([0.02, 0.03])
    admitter = ProbabilisticAdmitter(rand=lambda: next(draws))
    busy = [endpoint("a", waiting=1, kv=0.0), endpoint("b", waiting=0, kv=0.16)]  # 0.2 and 0.2
    assert admitter.saturation(busy) == pytest.approx(0.2)
    assert admitter.shed_probability(0.2) == pytest.approx(0.2**5 * 300)  # 0.096
    assert admitter.shed_probability(0.34) == pytest.approx(1.0, abs=0.02)
    assert admitter.admit_request(request(priority=0), busy) is None  # never sheds priority >= 0
    assert admitter.admit_request(request(priority=-1), busy) is not None  # 0.02 < 0.096
    assert admitter.admit_request(request(priority=-1), []) is None
    never_scraped = endpoint("c")
    never_scraped.metrics.updated_at = 0.0
    assert admitter.saturation([never_scraped]) == 1.0
    with pytest.raises(ValueError, match="'power' must be > 0"):
        ProbabilisticAdmitter(parameters={"power": 0})


async def test_admitter_sheds_sheddable_with_429_and_admits_standard() -> None:
    director = director_for(ADMIT_CONFIG)
    for e in director.store.endpoints():
        set_metrics(e, waiting_queue=5)  # saturation 1.0: probability 1
    with pytest.raises(GatewayError) as caught:
        await director.route(director.new_context({}), chat(SHEDDABLE))
    assert caught.value.status == 429 and caught.value.code == "admission_rejected"
    assert "saturation=1.000" in str(caught.value)
    ctx = director.new_context({})
    await director.route(ctx, chat(MODEL))
    director.on_complete(ctx)
    for e in director.store.endpoints():
        set_metrics(e, waiting_queue=0)  # idle pool: probability 0
    ctx = director.new_context({})
    await director.route(ctx, chat(SHEDDABLE))
    director.on_complete(ctx)
    assert all(e.in_flight == 0 for e in director.store.endpoints())  # refused ones released


# --- context-length-aware -------------------------------------------------------------------
def test_context_length_scores_and_filters_by_label() -> None:
    short, long_, wide, bare, broken = (endpoint(n) for n in ("short", "long", "wide", "bare", "broken"))
    label = "llm-d.ai/context-length-range"
    short.labels[label], long_.labels[label], wide.labels[label] = "0-2048", "2048-8192", "0-100000"
    broken.labels[label] = "lots"
    eps = [short, long_, wide, bare, broken]
    req = request("x" * 4000 * 4)  # 16000 bytes: 4000 tokens
    scores = ContextLengthAware().score(CycleState(), req, eps)
    assert scores[1] == pytest.approx(range_score(4000, 2048, 8192))
    assert scores[1] > scores[2] > 0.3 > scores[0]  # tight in-range > wide in-range > miss
    assert scores[0] == pytest.approx(0.3 / (1 + (4000 - 2048) / 1000))
    assert scores[3:] == [0.5, 0.0]
    assert range_score(7, 7, 7) == 1.0
    scorer_only = ContextLengthAware()
    assert scorer_only.filter(CycleState(), req, eps) == eps
    filtering = ContextLengthAware(parameters={"enableFiltering": True})
    assert filtering.filter(CycleState(), req, eps) == [long_, wide, bare]


def test_context_length_counts_chat_string_contents() -> None:
    req = request("ignored")
    req.messages = [{"role": "user", "content": "y" * 400}, {"role": "user", "content": [{"type": "text"}]}]
    f = ContextLengthAware(parameters={"enableFiltering": True, "label": "ctx"})
    small, big = endpoint("small"), endpoint("big")
    small.labels["ctx"], big.labels["ctx"] = "0-100", "101-200"
    assert f.filter(CycleState(), req, [small, big]) == [small]  # 400 bytes -> 100 tokens


# --- token-load-scorer ----------------------------------------------------------------------
def test_token_load_scorer_normalises_estimated_tokens() -> None:
    a, b, c = endpoint("a"), endpoint("b"), endpoint("c")
    a.load.prompt_tokens, b.load.prompt_tokens, c.load.prompt_tokens = 0, 200, 4000
    scorer = TokenLoadScorer(parameters={"queueThresholdTokens": 1000})
    assert scorer.score(CycleState(), request(), [a, b, c]) == [1.0, pytest.approx(0.5), 0.0]
    assert TokenLoadScorer(parameters={"queueThresholdTokens": 0}).threshold_tokens == 4194304
