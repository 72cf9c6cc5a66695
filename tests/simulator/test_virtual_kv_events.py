"""KV events in virtual time: the fleet's engines publish vLLM's wire batches, the driver
hands them to the precise prefix-cache scorer's index as its ZMQ subscriber would."""

from __future__ import annotations

import json

from inference_gateway.scheduling.plugins.precise_prefix_cache_scorer import PrecisePrefixCacheScorer
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet import run_fleet
from inference_gateway.simulator.fleet_server import VIRTUAL_HASH_SEED
from inference_gateway.simulator.fleet_types import SimRequest
from inference_gateway.simulator.gateway import VirtualGateway, seeded_config

PRECISE = f"""
plugins:
- type: precise-prefix-cache-scorer
  parameters:
    tokenizer: sim
    tokenProcessorConfig: {{blockSize: 16, hashSeed: "{VIRTUAL_HASH_SEED}"}}
- type: queue-scorer
schedulingProfiles:
- name: default
  plugins: [{{pluginRef: precise-prefix-cache-scorer, weight: 3}}, {{pluginRef: queue-scorer}}]
"""


def test_engines_kv_events_reach_the_precise_scorers_index() -> None:
    gateway = VirtualGateway(seeded_config(PRECISE, 1))
    scorer = gateway.config.plugins["precise-prefix-cache-scorer"]
    assert isinstance(scorer, PrecisePrefixCacheScorer)
    events = json.dumps({"enable_kv_cache_events": True, "publisher": "zmq"})
    servers = [ServerConfig(name=f"s{i}", seed=i, kv_events_config=events) for i in range(3)]
    system = "<system> " + "the same long instructions " * 40
    requests = [SimRequest(i, 0.2 * i, 0, 8, None, None, system + f"question {i}") for i in range(20)]
    result = run_fleet(requests, servers, gateway)
    assert all(r.status == "ok" for r in result.results)
    assert scorer.index.size() > 0  # stored blocks arrived as events
    assert scorer.blocks_matched > 0  # and later requests matched them
