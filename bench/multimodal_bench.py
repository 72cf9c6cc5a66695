"""Image-heavy chat in virtual time: does hashing images into the prefix index pay?

    PYTHONPATH=src python bench/multimodal_bench.py [--quick] [--markdown]

Workload: a catalogue of 256 product photos (896x896 PNG, 1,024 tokens each under Qwen2-VL's
sizing; 262k tokens in all, more than one server's ~112k-token KV cache, less than the
fleet's), chosen with Zipf(1.1) popularity; each request is one photo plus a short question,
~60 output tokens, Poisson arrivals. 4 simulated H100s; encoder 15 ms per 1k image tokens
with vLLM's default encoder cache (max_num_batched_tokens = 8,192 tokens, i.e. 8 photos).
Schedulers: round robin; the EPP's default profile with media left out of the prompt
(`media-token-estimator: {hashMedia: false}`, i.e. text-only affinity, what the EPP did
before multimodal support); the default profile with media hashed in (the default now).
Prompts for the EPP are built by the director's own code (`prompt_and_media`); token ids,
block hashes and encoder spans by the simulator's (`encode_chat`).
"""

from __future__ import annotations

import argparse
import base64
import io
import random
from collections.abc import Callable

from PIL import Image
from rich.console import Console
from rich.table import Table

from inference_gateway.media import MediaTokenRule
from inference_gateway.requestcontrol.body import prompt_and_media
from inference_gateway.scheduling.plugins.media_token_estimator import MediaTokenEstimator
from inference_gateway.simulator.config import LengthDistribution, ServerConfig
from inference_gateway.simulator.fleet import run_fleet
from inference_gateway.simulator.fleet_types import Scheduler, SimRequest
from inference_gateway.simulator.gateway import VirtualGateway
from inference_gateway.simulator.report import percentile
from inference_gateway.simulator.schedulers import RoundRobinScheduler
from inference_gateway.simulator.tokenizer import SimTokenizer, block_hashes, encode_chat

MODEL = "Qwen/Qwen2-VL-7B-Instruct"
PROFILE = """
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- {type: max-score-picker, parameters: {seed: 1}}
- type: media-token-estimator
  parameters: {hashMedia: HASH}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: max-score-picker}
"""
POLICIES: dict[str, Callable[[], Scheduler]] = {
    "round robin": RoundRobinScheduler,
    "EPP, text-only affinity": lambda: VirtualGateway(PROFILE.replace("HASH", "false")),
    "EPP, media hashed": lambda: VirtualGateway(PROFILE.replace("HASH", "true")),
}


def catalogue(n: int, rng: random.Random) -> list[str]:
    images = []
    for i in range(n):
        buf = io.BytesIO()
        color = (rng.randrange(256), rng.randrange(256), i % 256)
        Image.new("RGB", (896, 896), color).save(buf, format="PNG")
        images.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())
    return images


def workload(qps: float, duration: float, seed: int, images: list[str]) -> list[dict]:
    rng = random.Random(seed)
    weights = [1 / (k + 1) ** 1.1 for k in range(len(images))]
    t, out = 0.0, []
    while True:
        t += rng.expovariate(qps)
        if t >= duration:
            return out
        image = rng.choices(images, weights)[0]
        question = " ".join(rng.choice(("price", "size", "colour", "material", "stock")) for _ in range(12))
        content = [{"type": "image_url", "image_url": {"url": image}}, {"type": "text", "text": question}]
        body = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
        out.append({"arrival": t, "body": body})


def requests_for(
    make: Callable[[], Scheduler], reqs: list[dict], rng: random.Random
) -> tuple[Scheduler, list[SimRequest]]:
    scheduler = make()
    estimator = next(
        (p for p in getattr(getattr(scheduler, "config", None), "plugins", {}).values()
         if isinstance(p, MediaTokenEstimator)),
        MediaTokenEstimator(),
    )  # fmt: skip
    tok, sim_rule = SimTokenizer(), MediaTokenRule()
    out = []
    for i, r in enumerate(reqs):
        prompt, _ = prompt_and_media(r["body"], estimator.rule_for(MODEL))
        ids, spans = encode_chat(r["body"]["messages"], tok, sim_rule)
        out.append(
            SimRequest(i, r["arrival"], len(ids), max(4, int(rng.lognormvariate(4.1, 0.4))),
                       block_hashes=block_hashes(ids, 16), prompt=prompt, media=spans)
        )  # fmt: skip
    return scheduler, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20 s per cell (smoke run)")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--duration", type=float, default=120.0)
    args = parser.parse_args()
    duration = 20.0 if args.quick else args.duration
    images = catalogue(256, random.Random(7))
    output = LengthDistribution(60, 0.4)
    servers = [ServerConfig(name=f"h100-{i}", seed=i, served_model_name=MODEL, output_len=output) for i in range(4)]  # noqa: E501
    header = ["QPS", "scheduler", "TTFT p50", "TTFT p90", "TPOT p90", "prefix hit %", "encoded %", "req/s"]
    rows = []
    for qps in (40, 80, 120):
        reqs = workload(qps, duration, 1, images)
        for name, make in POLICIES.items():
            scheduler, sims = requests_for(make, reqs, random.Random(2))
            run = run_fleet(sims, servers, scheduler)
            done = [r for r in run.results if r.status == "ok" and r.finish >= 0]
            ttft = sorted(r.ttft for r in done)
            tpot = sorted(r.tpot for r in done if r.output_tokens > 1)
            prompt = sum(r.prompt_tokens for r in done)
            cached = sum(r.cached_tokens for r in done)
            image_tokens = sum(t for s in sims for _, _, t in s.media)
            encoded = sum(s.stats.encoder_tokens for s in run.servers)
            rows.append([str(qps), name, _ms(percentile(ttft, 50)), _ms(percentile(ttft, 90)),
                         _ms(percentile(tpot, 90), 1), f"{100 * cached / max(prompt, 1):.1f}",
                         f"{100 * encoded / max(image_tokens, 1):.1f}",
                         f"{len(done) / duration:.1f}"])  # fmt: skip
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    table = Table(title=f"image-heavy chat, 4 x H100, {duration:.0f} s per cell (virtual time)")
    for h in header:
        table.add_column(h)
    for row in rows:
        table.add_row(*row)
    Console(width=140).print(table)


def _ms(seconds: float, digits: int = 0) -> str:
    value = seconds * 1000
    return f"{value:,.{digits}f} ms" if value < 10_000 else f"{seconds:,.0f} s"


if __name__ == "__main__":
    main()
