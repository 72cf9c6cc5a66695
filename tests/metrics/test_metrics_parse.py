"""The targeted parser agrees with prometheus_client on the families it reads."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from inference_gateway.metrics.parse import family_samples, parse_families

PAGE = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="llama"} 3.0
vllm:num_requests_running{engine="1",model_name="llama"} 4.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="llama"} 7.0
vllm:num_requests_waiting{engine="1",model_name="llama"} 1.0
# TYPE vllm:num_requests_waiting_by_reason gauge
vllm:num_requests_waiting_by_reason{reason="capacity"} 99.0
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.001",model_name="llama"} 0.0
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="llama"} 12.0
vllm:time_to_first_token_seconds_count{model_name="llama"} 12.0
vllm:time_to_first_token_seconds_sum{model_name="llama"} 1.5
# TYPE vllm:lora_requests_info gauge
vllm:lora_requests_info{max_lora="2",running_lora_adapters="a,b",waiting_lora_adapters=""} 1.7e+09
vllm:lora_requests_info{max_lora="2",running_lora_adapters="c",waiting_lora_adapters="d"} 1.6e+09
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",note="a \\"quoted\\" } brace \\\\ slash",num_gpu_blocks="2048"} 1
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc 0.42 1700000000000
"""


def reference(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name:
                out.append((dict(s.labels), s.value))
    return out


def test_matches_prometheus_client_on_every_wanted_family() -> None:
    names = [
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:lora_requests_info",
        "vllm:cache_config_info",
        "vllm:kv_cache_usage_perc",
        "vllm:time_to_first_token_seconds_count",
    ]
    parsed = parse_families(PAGE, names)
    for name in names:
        assert [(s.labels, s.value) for s in parsed[name]] == reference(PAGE, name), name


def test_longer_names_sharing_a_prefix_are_not_confused() -> None:
    waiting = family_samples(PAGE, "vllm:num_requests_waiting")
    assert [s.value for s in waiting] == [7.0, 1.0]


def test_missing_family_and_first_line_family() -> None:
    assert family_samples(PAGE, "vllm:gpu_cache_usage_perc") == []
    page = 'first_metric{a="1"} 5\nother 1\n'
    assert [s.value for s in family_samples(page, "first_metric")] == [5.0]
    assert [s.value for s in family_samples("x 1", "x")] == [1.0]


def test_crlf_and_unlabelled_samples() -> None:
    page = "# TYPE g gauge\r\ng 2.5\r\nh 1\r\n"
    assert [(s.labels, s.value) for s in family_samples(page, "g")] == [({}, 2.5)]


def test_malformed_values_are_skipped() -> None:
    page = 'g{a="1"} notanumber\ng{a="2"} 3\n'
    assert [s.value for s in family_samples(page, "g")] == [3.0]


label_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)


@given(
    st.lists(
        st.tuples(label_values, st.floats(allow_nan=False, allow_infinity=False)), min_size=1, max_size=5
    )
)
def test_label_values_round_trip_like_prometheus_client(series: list[tuple[str, float]]) -> None:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    lines = ["# TYPE fam gauge"]
    lines += [f'fam{{idx="{i}",v="{esc(v)}"}} {val!r}' for i, (v, val) in enumerate(series)]
    page = "\n".join(lines) + "\n"
    ours = [(s.labels, s.value) for s in family_samples(page, "fam")]
    assert ours == reference(page, "fam")
