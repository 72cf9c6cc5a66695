"""Built-in scheduling plugins, one per module, registered by upstream type name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inference_gateway.requestcontrol.preemption import SheddablePreemption
from inference_gateway.scheduling.plugins.active_request_scorer import ActiveRequestScorer
from inference_gateway.scheduling.plugins.approx_prefix_cache_producer import ApproxPrefixCacheProducer
from inference_gateway.scheduling.plugins.by_role_filter import (
    ByLabelFilter,
    DecodeFilter,
    EncodeFilter,
    PrefillFilter,
)
from inference_gateway.scheduling.plugins.capacity_load_scorer import CapacityLoadScorer
from inference_gateway.scheduling.plugins.concurrency_detector import ConcurrencyDetector
from inference_gateway.scheduling.plugins.context_length_aware import ContextLengthAware
from inference_gateway.scheduling.plugins.data_parallel_profile_handler import DataParallelProfileHandler
from inference_gateway.scheduling.plugins.dcgm_data_source import DcgmDataSource
from inference_gateway.scheduling.plugins.decision_tree_filter import DecisionTreeFilter
from inference_gateway.scheduling.plugins.endpoint_notification_source import EndpointNotificationSource
from inference_gateway.scheduling.plugins.engine_priority import EnginePriority
from inference_gateway.scheduling.plugins.gpu_utilization_scorer import GpuUtilizationScorer
from inference_gateway.scheduling.plugins.header_testing_filter import HeaderBasedTestingFilter
from inference_gateway.scheduling.plugins.inflight_load_producer import InFlightLoadProducer
from inference_gateway.scheduling.plugins.kv_cache_utilization_scorer import KVCacheUtilizationScorer
from inference_gateway.scheduling.plugins.label_selector_filter import ByLabelSelector, LabelSelectorFilter
from inference_gateway.scheduling.plugins.latency_scorer import LatencyScorer
from inference_gateway.scheduling.plugins.latency_slo_admitter import LatencySloAdmitter
from inference_gateway.scheduling.plugins.least_kv_cache_filter import LeastKVCacheFilter
from inference_gateway.scheduling.plugins.least_queue_filter import LeastQueueFilter
from inference_gateway.scheduling.plugins.load_aware_scorer import LoadAwareScorer
from inference_gateway.scheduling.plugins.lora_affinity_filter import LoraAffinityFilter
from inference_gateway.scheduling.plugins.lora_affinity_scorer import LoraAffinityScorer
from inference_gateway.scheduling.plugins.low_queue_filter import LowQueueFilter
from inference_gateway.scheduling.plugins.max_score_picker import MaxScorePicker
from inference_gateway.scheduling.plugins.media_token_estimator import MediaTokenEstimator
from inference_gateway.scheduling.plugins.metrics_data_source import MetricsDataSource
from inference_gateway.scheduling.plugins.model_server_metrics import (
    CoreMetricsExtractor,
    ModelServerMetrics,
)
from inference_gateway.scheduling.plugins.models_data_source import ModelsDataExtractor, ModelsDataSource
from inference_gateway.scheduling.plugins.no_hit_lru_scorer import NoHitLRUScorer
from inference_gateway.scheduling.plugins.parsers import OpenAIParser, PassthroughParser
from inference_gateway.scheduling.plugins.pd_decider import (
    AlwaysDisaggMultimodalDecider,
    AlwaysDisaggPDDecider,
    PrefixBasedPDDecider,
)
from inference_gateway.scheduling.plugins.pd_profile_handler import (
    DisaggHeadersHandler,
    DisaggProfileHandler,
    PdProfileHandler,
    PrefillHeaderHandler,
)
from inference_gateway.scheduling.plugins.precise_prefix_cache_scorer import PrecisePrefixCacheScorer
from inference_gateway.scheduling.plugins.predicted_latency_producer import PredictedLatencyProducer
from inference_gateway.scheduling.plugins.predicted_latency_scorer import PredictedLatencyScorer
from inference_gateway.scheduling.plugins.prefix_cache_affinity_filter import PrefixCacheAffinityFilter
from inference_gateway.scheduling.plugins.prefix_cache_scorer import PrefixCacheScorer
from inference_gateway.scheduling.plugins.probabilistic_admitter import ProbabilisticAdmitter
from inference_gateway.scheduling.plugins.queue_scorer import QueueScorer
from inference_gateway.scheduling.plugins.random_picker import RandomPicker
from inference_gateway.scheduling.plugins.request_attribute_reporter import RequestAttributeReporter
from inference_gateway.scheduling.plugins.round_robin_picker import RoundRobinPicker
from inference_gateway.scheduling.plugins.running_requests_scorer import RunningRequestsScorer
from inference_gateway.scheduling.plugins.served_endpoint_verifier import DestinationEndpointServedVerifier
from inference_gateway.scheduling.plugins.served_model_filter import ServedModelFilter
from inference_gateway.scheduling.plugins.session_affinity_scorer import SessionAffinityScorer
from inference_gateway.scheduling.plugins.sheddable_capacity_filter import SheddableCapacityFilter
from inference_gateway.scheduling.plugins.single_profile_handler import SingleProfileHandler
from inference_gateway.scheduling.plugins.slo_headroom_tier_filter import SloHeadroomTierFilter
from inference_gateway.scheduling.plugins.token_load_scorer import TokenLoadScorer
from inference_gateway.scheduling.plugins.token_producer import LegacyTokenizer, TokenProducer
from inference_gateway.scheduling.plugins.utilization_detector import UtilizationDetector
from inference_gateway.scheduling.plugins.vertexai_parser import VertexAIParser
from inference_gateway.scheduling.plugins.vllmgrpc_parser import VllmGRPCParser
from inference_gateway.scheduling.plugins.weighted_random_picker import WeightedRandomPicker

if TYPE_CHECKING:
    from inference_gateway.scheduling.registry import PluginRegistry

BUILTIN = (
    QueueScorer,
    KVCacheUtilizationScorer,
    RunningRequestsScorer,
    LoraAffinityScorer,
    PrefixCacheScorer,
    PrecisePrefixCacheScorer,
    SessionAffinityScorer,
    CapacityLoadScorer,
    MaxScorePicker,
    RandomPicker,
    RoundRobinPicker,
    LatencyScorer,
    WeightedRandomPicker,
    LowQueueFilter,
    LeastQueueFilter,
    LeastKVCacheFilter,
    LoraAffinityFilter,
    ServedModelFilter,
    SheddableCapacityFilter,
    SingleProfileHandler,
    ModelServerMetrics,
    CoreMetricsExtractor,
    MetricsDataSource,
    ModelsDataSource,
    EnginePriority,
    DcgmDataSource,
    GpuUtilizationScorer,
    OpenAIParser,
    PassthroughParser,
    UtilizationDetector,
    ConcurrencyDetector,
    InFlightLoadProducer,
    ApproxPrefixCacheProducer,
    PrefixCacheAffinityFilter,
    LoadAwareScorer,
    ActiveRequestScorer,
    NoHitLRUScorer,
    LabelSelectorFilter,
    ByLabelSelector,
    HeaderBasedTestingFilter,
    DestinationEndpointServedVerifier,
    MediaTokenEstimator,
    SheddablePreemption,
    TokenLoadScorer,
    ContextLengthAware,
    ProbabilisticAdmitter,
    DataParallelProfileHandler,
    TokenProducer,
    LegacyTokenizer,
    EndpointNotificationSource,
    RequestAttributeReporter,
    VllmGRPCParser,
    ModelsDataExtractor,
    VertexAIParser,
    # The predicted-latency family (upstream v1.5 / llm-d) on our in-process predictor
    PredictedLatencyProducer,
    PredictedLatencyScorer,
    SloHeadroomTierFilter,
    LatencySloAdmitter,
    # Disaggregated prefill/decode (llm-d's names)
    ByLabelFilter,
    PrefillFilter,
    DecodeFilter,
    EncodeFilter,
    AlwaysDisaggPDDecider,
    AlwaysDisaggMultimodalDecider,
    PrefillHeaderHandler,
    DisaggHeadersHandler,
)


def register_builtin(registry: PluginRegistry) -> None:
    for cls in BUILTIN:
        registry.register(cls.type_name, cls)
    registry.register_with_handle(DecisionTreeFilter.type_name, DecisionTreeFilter.from_params)
    registry.register_with_handle(PrefixBasedPDDecider.type_name, PrefixBasedPDDecider.from_params)
    registry.register_with_handle(PdProfileHandler.type_name, PdProfileHandler.from_params)
    registry.register_with_handle(DisaggProfileHandler.type_name, DisaggProfileHandler.from_params)
