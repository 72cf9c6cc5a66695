"""What NVIDIA's dcgm-exporter would report for a simulated server's GPU.

dcgm-exporter samples each field every `interval` (1 s by default) and labels every series
with the GPU (gpu, UUID, device, modelName, Hostname) and, with Kubernetes pod mapping on,
the pod using it (pod, namespace, container). The simulator derives the fields from its
engine: utilisation is the share of model time the engine spent in iterations over the last
interval; framebuffer use is what vLLM allocates at start-up (weights plus the KV pool, a
`gpu_memory_utilization` share of the card) and does not move with load, as on a real GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from inference_gateway.simulator.engine import Engine

DCGM_PATH = "/dcgm/metrics"  # where a simulated pod serves its GPU's DCGM page
H100_FB_MIB = 81_559  # what DCGM reports as FB total for an H100 80GB HBM3
GPU_MEMORY_UTILIZATION = 0.9  # vLLM's default --gpu-memory-utilization


@dataclass(frozen=True, slots=True)
class GpuSample:
    util: float  # 0..1 over the last interval
    fb_used_mib: int
    fb_free_mib: int


class SimulatedGpu:
    def __init__(self, engine: Engine, clock: Callable[[], float], interval_s: float = 1.0) -> None:
        self.engine = engine
        self.clock = clock
        self.interval_s = interval_s
        self._mark = (clock(), engine.stats.busy_time)
        self._util = 0.0

    def sample(self) -> GpuSample:
        now, busy = self.clock(), self.engine.stats.busy_time
        start, busy0 = self._mark
        if now - start >= self.interval_s:
            self._util = min(1.0, max(0.0, (busy - busy0) / (now - start)))
            self._mark = (now, busy)
        used = round(H100_FB_MIB * GPU_MEMORY_UTILIZATION)
        return GpuSample(self._util, used, H100_FB_MIB - used)


def render_dcgm(sample: GpuSample, pod: str, namespace: str, hostname: str, container: str = "vllm") -> bytes:
    """One GPU's page in dcgm-exporter's exposition format."""
    labels = (
        f'gpu="0",UUID="GPU-sim-{hostname}",pci_bus_id="00000000:00:00.0",device="nvidia0",'
        f'modelName="NVIDIA H100 80GB HBM3",Hostname="{hostname}",container="{container}",'
        f'namespace="{namespace}",pod="{pod}"'
    )
    fields = [
        ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", f"{round(sample.util * 100)}"),
        ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", f"{sample.fb_used_mib}"),
        ("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", f"{sample.fb_free_mib}"),
        ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "Graphics engine active ratio.", f"{sample.util:.4f}"),
    ]
    lines: list[str] = []
    for name, doc, value in fields:
        lines += [f"# HELP {name} {doc}", f"# TYPE {name} gauge", f"{name}{{{labels}}} {value}"]
    return ("\n".join(lines) + "\n").encode()
