"""Turn one /metrics page into EndpointMetrics using an engine mapping."""

from __future__ import annotations

import time

from inference_gateway.datastore.endpoint import EndpointMetrics
from inference_gateway.metrics.mappings import EngineMapping
from inference_gateway.metrics.parse import Sample, family_samples, histogram_sums_and_counts
from inference_gateway.metrics.spec import MetricSpec

# Latency-histogram totals only feed rates over seconds (capacity-load-scorer), and finding a
# histogram deep in a large page costs more than the rest of the parse: read them this often.
ITL_REFRESH_S = 0.5


class MissingMetricsError(ValueError):
    """A /metrics page without any of the engine's load metrics: garbage, or another server."""


def metrics_from_page(
    text: str, mapping: EngineMapping, previous: EndpointMetrics | None = None, now: float | None = None
) -> EndpointMetrics:
    fams = _FamilyReader(text)
    queue = _first_match(fams, mapping.waiting)
    running = _first_match(fams, mapping.running)
    kv = _first_match(fams, mapping.kv_usage)
    if not (queue or running or kv) and (mapping.waiting or mapping.running or mapping.kv_usage):
        # Reading zeros from such a page would make the pod look idle and attract all traffic.
        raise MissingMetricsError(f"the page has none of the {mapping.engine} load metrics")
    now = time.monotonic() if now is None else now
    active, waiting, max_lora = lora_state(_first_match(fams, mapping.lora_info))
    block_size, num_blocks = _cache_geometry(fams, mapping, previous)
    if previous is not None and now - previous.itl_read_at < ITL_REFRESH_S:
        itl_sum, itl_count, itl_read_at = previous.itl_sum_seconds, previous.itl_count, previous.itl_read_at
    else:
        (itl_sum, itl_count), itl_read_at = _histogram_totals(fams, mapping.itl), now
    return EndpointMetrics(
        # Counts add up across series (e.g. one per data-parallel engine); utilisation takes
        # the worst series so saturation is never under-reported.
        waiting_queue=int(sum(s.value for s in queue)),
        running_requests=int(sum(s.value for s in running)),
        kv_cache_usage=max((s.value for s in kv), default=0.0),
        active_adapters=active,
        waiting_adapters=waiting,
        max_active_adapters=max_lora,
        block_size=block_size,
        num_gpu_blocks=num_blocks,
        served_models=_model_names(fams),
        itl_sum_seconds=itl_sum,
        itl_count=itl_count,
        itl_read_at=itl_read_at,
        updated_at=now,
    )


class _FamilyReader:
    """Parses a family on first use, so fallback specs cost nothing when the first one is present."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.parsed: dict[str, list[Sample]] = {}

    def get(self, name: str) -> list[Sample]:
        samples = self.parsed.get(name)
        if samples is None:
            samples = self.parsed[name] = family_samples(self.text, name)
        return samples


def _first_match(fams: _FamilyReader, specs: tuple[MetricSpec, ...]) -> list[Sample]:
    for spec in specs:
        samples = fams.get(spec.name)
        if samples:
            selected = spec.select(samples)
            if selected:
                return selected
    return []


def _histogram_totals(
    fams: _FamilyReader, specs: tuple[MetricSpec, ...]
) -> tuple[float | None, float | None]:
    """(sum, count) of the first histogram in `specs` on the page, added up across its series."""
    for spec in specs:
        all_sums, all_counts = histogram_sums_and_counts(fams.text, spec.name)
        sums, counts = spec.select(all_sums), spec.select(all_counts)
        if sums and counts:
            return sum(s.value for s in sums), sum(s.value for s in counts)
    return None, None


def _cache_geometry(
    fams: _FamilyReader, mapping: EngineMapping, previous: EndpointMetrics | None
) -> tuple[int, int]:
    block_size = previous.block_size if previous else 0
    num_blocks = previous.num_gpu_blocks if previous else 0
    if block_size > 0 and num_blocks > 0:
        return block_size, num_blocks  # engine cache geometry is fixed for the process's life
    for sample in _first_match(fams, mapping.cache_info):
        block_size = _int_label(sample, mapping.block_size_label, block_size)
        num_blocks = _int_label(sample, mapping.num_blocks_label, num_blocks)
    direct = _first_match(fams, mapping.block_size)
    if direct:
        block_size = int(direct[0].value)
    direct = _first_match(fams, mapping.num_blocks)
    if direct:
        num_blocks = int(direct[0].value)
    return block_size, num_blocks


def _int_label(sample: Sample, key: str, default: int) -> int:
    try:
        return int(float(sample.labels[key]))
    except (KeyError, ValueError):
        return default


def _model_names(fams: _FamilyReader) -> frozenset[str]:
    """Engines label their gauges with the served model name (vLLM: model_name)."""
    return frozenset(
        s.labels["model_name"]
        for samples in fams.parsed.values()
        for s in samples
        if "model_name" in s.labels
    )


def lora_state(samples: list[Sample]) -> tuple[frozenset[str], frozenset[str], int | None]:
    """vLLM exports one lora_requests_info series per state; its value is the time it was set,
    so the newest (largest value) is current. No series: the slots are unknown (None)."""
    if not samples:
        return frozenset(), frozenset(), None
    newest = max(samples, key=lambda s: s.value)

    def names(key: str) -> frozenset[str]:
        return frozenset(a for a in (x.strip() for x in newest.labels.get(key, "").split(",")) if a)

    try:
        max_lora: int | None = int(newest.labels["max_lora"])
    except (KeyError, ValueError):
        max_lora = None
    return names("running_lora_adapters"), names("waiting_lora_adapters"), max_lora
