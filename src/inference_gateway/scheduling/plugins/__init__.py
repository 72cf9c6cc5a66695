"""Built-in scheduling plugins, one per module, registered by upstream type name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inference_gateway.scheduling.plugins.kv_cache_utilization_scorer import (
    KVCacheUtilizationScorer,
)
from inference_gateway.scheduling.plugins.max_score_picker import MaxScorePicker
from inference_gateway.scheduling.plugins.queue_scorer import QueueScorer
from inference_gateway.scheduling.plugins.single_profile_handler import SingleProfileHandler

if TYPE_CHECKING:
    from inference_gateway.scheduling.registry import PluginRegistry

BUILTIN = (QueueScorer, KVCacheUtilizationScorer, MaxScorePicker, SingleProfileHandler)


def register_builtin(registry: PluginRegistry) -> None:
    for cls in BUILTIN:
        registry.register(cls.type_name, cls)
