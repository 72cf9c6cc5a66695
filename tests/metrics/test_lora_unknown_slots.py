"""A pod whose engine has not published its LoRA slots yet (fresh or restarted vLLM) is not starved."""

from __future__ import annotations

import aiohttp
import orjson
from fake_engine import store_for_ports

from inference_gateway.metrics.scraper import Scraper
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.server import SimulatedServer

BASE = "meta-llama/Llama-2-7b-hf"
LORA_CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: lora-affinity-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 1}
  - {pluginRef: kv-cache-utilization-scorer, weight: 1}
  - {pluginRef: lora-affinity-scorer, weight: 3}
  - {pluginRef: max-score-picker}
"""


async def _serve_one(server: SimulatedServer) -> None:
    url = f"http://127.0.0.1:{server.port}/v1/completions"
    async with (
        aiohttp.ClientSession() as s,
        s.post(url, json={"model": BASE, "prompt": "hi", "max_tokens": 2}) as r,
    ):
        assert r.status == 200


async def test_restarted_pod_gets_traffic_again() -> None:
    cfg = ServerConfig(served_model_name=BASE, lora_adapters=["sql-lora"], time_scale=0.01)
    warm, restarted = SimulatedServer(cfg), SimulatedServer(cfg)
    for server in (warm, restarted):
        await server.start("127.0.0.1", 0)
    scraper: Scraper | None = None
    try:
        await _serve_one(warm)  # it now publishes vllm:lora_requests_info; `restarted` does not
        store = store_for_ports([warm.port, restarted.port])
        scraper = Scraper(store)
        await scraper.scrape_once()
        by_port = {e.port: e for e in store.endpoints()}
        assert by_port[warm.port].metrics.max_active_adapters == 1
        assert by_port[restarted.port].metrics.max_active_adapters is None  # unknown, not full
        config = load_config(LORA_CONFIG)
        director = Director(store, PoolRuntime(config, flow_control=False))
        picked = set()
        for i in range(20):
            ctx = director.new_context({"x-gateway-explain": "true"})
            body = orjson.dumps({"model": BASE, "prompt": f"request {i}"})
            picked.add((await director.route(ctx, body)).destination.split(",")[0])
        # Both pods look alike to every scorer now; ties are broken at random, so 20 picks
        # reach both unless the restarted pod is starved (odds of a false failure: 2**-19).
        assert by_port[restarted.port].address in picked
    finally:
        if scraper is not None:
            await scraper.stop()
        for server in (warm, restarted):
            await server.stop()
