"""Workloads: length statistics, sharing structure, popularity and determinism."""

from __future__ import annotations

import statistics
from pathlib import Path

import orjson
import pytest

from inference_gateway.bench.arrivals import arrival_times
from inference_gateway.bench.text import count_tokens, synthetic_text, text_of_bytes
from inference_gateway.bench.workloads import WorkloadSpec, generate, load_sharegpt


def test_synthetic_text_has_the_requested_token_count_and_is_seeded() -> None:
    text = synthetic_text(500, seed=3)
    assert count_tokens(text) == 500
    assert synthetic_text(500, seed=3) == text
    assert synthetic_text(500, seed=4) != text
    assert len(text_of_bytes(220_000, 1)) == 220_000


def test_sharegpt_lengths_follow_the_configured_median_and_mean() -> None:
    reqs = list(generate(WorkloadSpec(), 20_000, seed=1))
    prompts = [r.prompt_tokens for r in reqs]
    outputs = [r.max_tokens for r in reqs]
    assert statistics.median(prompts) == pytest.approx(200, rel=0.05)
    assert statistics.mean(prompts) == pytest.approx(300, rel=0.07)
    assert statistics.median(outputs) == pytest.approx(150, rel=0.05)
    assert all(p + o <= 4096 for p, o in zip(prompts, outputs, strict=True))
    assert [r.prompt_tokens for r in generate(WorkloadSpec(), 50, seed=1)] == prompts[:50]


def test_shared_prefix_requests_share_exactly_their_group_prefix() -> None:
    spec = WorkloadSpec(kind="shared-prefix", groups=3, questions=2, prefix_tokens=64, question_tokens=16)
    reqs = list(generate(spec, 60, seed=2))
    by_group: dict[int, list[str]] = {}
    for r in reqs:
        by_group.setdefault(r.prefix_group, []).append(r.prompt())
    assert set(by_group) == {0, 1, 2}
    prefixes = {g: texts[0][: len(synthetic_text(64, 1_000_003 * (g + 1)))] for g, texts in by_group.items()}
    for g, texts in by_group.items():
        assert all(t.startswith(prefixes[g]) for t in texts)
        assert len(set(texts)) <= 2  # two questions per group: prompts repeat
    assert len(set(prefixes.values())) == 3
    assert all(count_tokens(r.prompt()) == 80 for r in reqs[:5])


def test_multi_lora_popularity_is_zipf_like() -> None:
    spec = WorkloadSpec(kind="multi-lora", adapters=5, zipf_s=1.2)
    counts: dict[str, int] = {}
    for r in generate(spec, 5000, seed=3):
        counts[r.model] = counts.get(r.model, 0) + 1
    ranked = [counts.get(f"lora-{i}", 0) for i in range(5)]
    assert ranked == sorted(ranked, reverse=True)
    assert ranked[0] > 3 * ranked[4]


def test_criticality_shares_and_models() -> None:
    spec = WorkloadSpec(
        kind="criticality",
        shares={"Critical": 0.2, "Standard": 0.5, "Sheddable": 0.3},
        class_models={"Critical": "crit", "Sheddable": "batch"},
    )
    reqs = list(generate(spec, 4000, seed=4))
    share = sum(r.criticality == "Sheddable" for r in reqs) / len(reqs)
    assert share == pytest.approx(0.3, abs=0.03)
    assert {r.model for r in reqs if r.criticality == "Critical"} == {"crit"}
    assert {r.priority for r in reqs} == {-1, 0, 1}


def test_long_prompt_body_is_the_configured_size() -> None:
    req = next(generate(WorkloadSpec(kind="long-prompt", prompt_bytes=200_000), 1, seed=5))
    assert len(req.prompt()) == 200_000
    assert req.prompt_tokens == pytest.approx(count_tokens(req.prompt()), rel=0.02)


def test_sharegpt_dataset_file_is_read_and_filtered(tmp_path: Path) -> None:
    data = [
        {"id": "a", "conversations": [{"from": "human", "value": "tell me a long story " * 5},
                                      {"from": "gpt", "value": "once upon a time " * 10}]},
        {"id": "short", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]},
        {"id": "lonely", "conversations": [{"from": "human", "value": "no reply here at all"}]},
    ]  # fmt: skip
    path = tmp_path / "sharegpt.json"
    path.write_bytes(orjson.dumps(data))
    convs = load_sharegpt(path)
    assert len(convs) == 1
    reqs = list(generate(WorkloadSpec(kind="dataset", dataset=path), 3, seed=1))
    assert all(r.prompt() == convs[0].prompt and r.max_tokens == convs[0].output_tokens for r in reqs)


def test_poisson_and_constant_arrivals() -> None:
    poisson = list(arrival_times("poisson", 200, 50, seed=1))
    assert len(poisson) == pytest.approx(10_000, abs=400)  # 4 sigma
    assert poisson == sorted(poisson)
    constant = list(arrival_times("constant", 4, 2, seed=1))
    assert constant == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    with pytest.raises(ValueError):
        list(arrival_times("closed", 1, 1, seed=1))
