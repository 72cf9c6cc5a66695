"""GPU metrics from dcgm-exporter pages: per-pod grouping, endpoint attributes, the scorer."""

from __future__ import annotations

import time

import pytest

from inference_gateway.metrics.dcgm import (
    FB_FREE_MIB,
    FB_USED_MIB,
    GPU_UTIL,
    GPUS,
    GR_ENGINE_ACTIVE,
    UPDATED_AT,
    DcgmConfig,
    DcgmSource,
    pod_gpu_stats,
)
from inference_gateway.scheduling.plugins.dcgm_data_source import DcgmDataSource
from inference_gateway.scheduling.plugins.gpu_utilization_scorer import GpuUtilizationScorer
from inference_gateway.scheduling.types import CycleState, SchedulingRequest
from tests.helpers import make_store

# As dcgm-exporter 3.x prints it: pod-1 is tensor-parallel over GPUs 0 and 1, GPU 2 is idle
# (no pod label), pod-2's series went through a Prometheus that renamed pod -> exported_pod.
PAGE = """\
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",device="nvidia0",Hostname="n1",namespace="default",pod="pod-1"} 90
DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-b",device="nvidia1",Hostname="n1",namespace="default",pod="pod-1"} 70
DCGM_FI_DEV_GPU_UTIL{gpu="2",UUID="GPU-c",device="nvidia2",Hostname="n1"} 0
DCGM_FI_DEV_GPU_UTIL{gpu="3",UUID="GPU-d",Hostname="n1",exported_namespace="default",exported_pod="pod-2"} 10
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-a",namespace="default",pod="pod-1"} 70000
DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-b",namespace="default",pod="pod-1"} 71000
# HELP DCGM_FI_DEV_FB_FREE Framebuffer memory free (in MiB).
# TYPE DCGM_FI_DEV_FB_FREE gauge
DCGM_FI_DEV_FB_FREE{gpu="0",UUID="GPU-a",namespace="default",pod="pod-1"} 11000
DCGM_FI_DEV_FB_FREE{gpu="1",UUID="GPU-b",namespace="default",pod="pod-1"} 10000
# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active.
# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu="0",UUID="GPU-a",namespace="default",pod="pod-1"} 0.8
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu="1",UUID="GPU-b",namespace="default",pod="pod-1"} 0.6
"""


def test_gpus_are_grouped_by_pod() -> None:
    stats = pod_gpu_stats(PAGE)
    assert set(stats) == {("default", "pod-1"), ("default", "pod-2")}
    one = stats[("default", "pod-1")]
    assert one[GPUS] == 2
    assert one[GPU_UTIL] == pytest.approx(0.8)
    assert one[GR_ENGINE_ACTIVE] == pytest.approx(0.7)
    assert (one[FB_USED_MIB], one[FB_FREE_MIB]) == (141000, 21000)
    two = stats[("default", "pod-2")]
    assert two[GPU_UTIL] == pytest.approx(0.1) and GR_ENGINE_ACTIVE not in two


def test_source_sets_attributes_on_the_pods_endpoints() -> None:
    store = make_store(pods=3)
    source = DcgmSource(store, DcgmConfig(exporters=[]))
    assert source._apply(pod_gpu_stats(PAGE), time.monotonic()) == 2
    by_pod = {e.pod.name: e.attributes for e in store.endpoints()}
    assert by_pod["pod-1"][GPU_UTIL] == pytest.approx(0.8)
    assert UPDATED_AT in by_pod["pod-2"]
    assert by_pod["pod-3"] == {}


def test_scorer_prefers_idle_gpus_and_is_neutral_without_fresh_data() -> None:
    store = make_store(pods=3)
    DcgmSource(store, DcgmConfig())._apply(pod_gpu_stats(PAGE), time.monotonic())
    endpoints = sorted(store.endpoints(), key=lambda e: e.pod.name)
    scorer = GpuUtilizationScorer("g", {})
    scores = scorer.score(CycleState(), SchedulingRequest("r", "m", "m"), endpoints)
    # pod-1: 1 - GR_ENGINE_ACTIVE (preferred over GPU_UTIL); pod-2: 1 - GPU_UTIL; pod-3: unknown
    assert scores == pytest.approx([0.3, 0.9, 0.5])
    endpoints[1].attributes[UPDATED_AT] -= 60
    assert scorer.score(CycleState(), SchedulingRequest("r", "m", "m"), endpoints)[1] == 0.5


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "set 'exporters' or 'endpointPath'"),
        ({"exporters": ["10.0.0.1:9400"]}, "http"),
        ({"endpointPath": "dcgm"}, "start with '/'"),
        ({"exporters": ["http://x:9400/metrics"], "interval": "0s"}, "> 0"),
        ({"exporters": ["http://x:9400/metrics"], "port": 1}, "unknown parameter"),
    ],
)
def test_bad_data_source_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DcgmDataSource("d", params)
