"""EndpointPickerConfig (inference.networking.x-k8s.io/v1alpha1) -> a Scheduler and friends.

Follows upstream's loader: plugins are built in order (a decision tree may reference plugins
defined above it); a profile without a picker gets max-score-picker; unless the config declares
a served-model-filter itself, every profile starts with one (never send a LoRA adapter to a
server that does not have it, whatever the scorers say); a single profile needs
no profile handler; with no `schedulingProfiles`, one `default` profile uses every filter,
scorer (weight 1) and picker defined. The `saturationDetector` section and the metrics
data-layer plugins are exposed for the director and the scraper.
"""

from __future__ import annotations

import difflib
import functools
import logging
from dataclasses import dataclass, field
from typing import Any

from inference_gateway.metrics.mappings import MappingRegistry
from inference_gateway.scheduling.config_schema import Decoded, SchemaError, decode
from inference_gateway.scheduling.config_sections import wire_sections
from inference_gateway.scheduling.interfaces import (
    BodyReader,
    ChecksProfiles,
    Filter,
    Picker,
    Plugin,
    PostPick,
    PrefixCacheConsumer,
    ProfileHandler,
    RequestParser,
    Scorer,
)
from inference_gateway.scheduling.latency_predictions import LatencyPredictionConsumer
from inference_gateway.scheduling.plugins.approx_prefix_cache_producer import ApproxPrefixCacheProducer
from inference_gateway.scheduling.plugins.max_score_picker import MaxScorePicker
from inference_gateway.scheduling.plugins.metrics_data_source import MetricsDataSource
from inference_gateway.scheduling.plugins.model_server_metrics import ModelServerMetrics
from inference_gateway.scheduling.plugins.predicted_latency_producer import PredictedLatencyProducer
from inference_gateway.scheduling.plugins.prefix_cache_scorer import PrefixCacheScorer
from inference_gateway.scheduling.plugins.served_model_filter import ServedModelFilter
from inference_gateway.scheduling.profile import Scheduler, SchedulingProfile, WeightedScorer
from inference_gateway.scheduling.registry import PluginHandle, PluginRegistry, default_registry
from inference_gateway.scheduling.saturation import SaturationConfig, SaturationDetector

log = logging.getLogger(__name__)

API_VERSION = "inference.networking.x-k8s.io/v1alpha1"
ACCEPTED_API_VERSIONS = (
    API_VERSION,
    "config.apix.gateway-api-inference-extension.sigs.k8s.io/v1alpha1",
    "llm-d.ai/v1alpha1",
)
# Upstream v1.5 registers exactly these (cmd/epp/runner); anything else is refused as there.
FEATURE_GATES = ("dataLayer", "enableLegacyMetrics", "flowControl")

# Upstream's chart default scorers (config/charts/inferencepool/templates/epp-config.yaml) read
# through the in-flight projection, with a round-robin picker instead of max-score: among the
# endpoints within 2 of the best total it takes the least recently picked. Round robin's even
# spacing of arrivals is what wins below saturation on pods whose TTFT is one or two engine
# steps (H100-class); the weights say when a pod is clearly worse and is skipped:
# - KV-cache use, weight 10: a pod 0.2 above the least used one is skipped. Where the KV cache
#   binds (L4-class pods, 12.8k tokens each) requests queue for blocks on the fuller pods; this
#   steers new ones away before they do (p90 TTFT at 90 % load 168 -> 157 ms in virtual time,
#   172 vs 188 ms in real time, tied with vllm-router kv_aware), and changes nothing on H100
#   pods whose caches stay within 0.2 of each other.
# - queue depth, weight 2: one waiting request is noise (exactly the tolerance).
# - prefix-cache affinity, weight 24 (upstream: 3): a pod holding most of the prompt stays ahead
#   of any queue/KV advantage (at most 12) plus the tolerance, so shared prefixes stay cached.
# - LoRA affinity, weight 30: a request for an adapter stays on the pods that run it (a pod with
#   a free adapter slot, 0.8, is 6 behind: it gets the adapter only when the pods running it are
#   0.4 fuller in KV; a full pod, 0, never gets it); a pod that keeps another adapter waiting is
#   drained (drainBlocked: its adapters score 0.6 there); base-model requests score alike on
#   every pod (adaptersOnly), so base-model routing is unchanged.
# Flow control is on (upstream gates it off): when every pod has 2 requests waiting or 95 % of
# its KV cache in use (projected), requests wait in the gateway's one FCFS queue and each goes
# to the first pod that frees up (late binding) instead of one engine's queue, where it would
# wait behind that engine's head of line and push it into KV preemptions. No request TTL: a
# request waits as long as its client does, as it would in an engine's queue. Requests waiting
# in an engine for an adapter slot are not load (adapterQueueIsLoad: false): counted, they made
# a multi-LoRA pool look saturated at a third of its throughput.
# Measured in docs/benchmarks.md ("Routing vs round robin", "Peer routers", "Multi-LoRA");
# upstream's exact default is bench/profiles/upstream-default.yaml.
DEFAULT_CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [flowControl]
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: lora-affinity-scorer
  parameters: {adaptersOnly: true, drainBlocked: true}
- type: round-robin-picker
  parameters: {tolerance: 2}
- type: utilization-detector
  parameters: {queueDepthThreshold: 2, kvCacheUtilThreshold: 0.95, adapterQueueIsLoad: false}
flowControl:
  defaultRequestTTL: 0
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 10
  - pluginRef: prefix-cache-scorer
    weight: 24
  - pluginRef: lora-affinity-scorer
    weight: 30
  - pluginRef: round-robin-picker
"""


class ConfigError(ValueError):
    pass


@dataclass
class EndpointPickerConfig:
    """The parsed config. `sections` keeps the raw non-scheduling sections; `flowControl` there
    says `enabled: false` unless the `flowControl` feature gate is on (as upstream)."""

    scheduler: Scheduler
    plugins: dict[str, Plugin]
    sections: dict[str, Any] = field(default_factory=dict)
    saturation: SaturationConfig = field(default_factory=SaturationConfig)
    metric_mappings: MappingRegistry = field(default_factory=MappingRegistry)
    metrics_scheme: str = "http"
    metrics_path: str = "/metrics"
    metrics_insecure_skip_verify: bool = True
    feature_gates: frozenset[str] = frozenset()
    detector: SaturationDetector | None = None
    parser: RequestParser | None = None

    def saturation_detector(self) -> SaturationDetector:
        """The plugin `saturationDetector.pluginRef` names (utilization-detector by default)."""
        return self.detector if self.detector is not None else SaturationDetector(self.saturation)

    @functools.cached_property
    def body_reader(self) -> BodyReader | None:
        """The parser when it reads non-JSON bodies itself. Decided once: an isinstance check
        against a runtime-checkable Protocol walks the protocol's members on every call, and
        the director asks on every request."""
        return self.parser if isinstance(self.parser, BodyReader) else None

    @property
    def flow_control_enabled(self) -> bool:
        return "flowControl" in self.feature_gates and self.sections["flowControl"].get("enabled", True)


def load_config(
    text: str | None = None, registry: PluginRegistry | None = None, source: str = "EndpointPickerConfig"
) -> EndpointPickerConfig:
    try:
        decoded = decode(text if text is not None else DEFAULT_CONFIG, source)
    except SchemaError as exc:
        raise ConfigError(str(exc)) from None
    doc = decoded.doc
    _check_header(doc, decoded)
    gates = _feature_gates(doc, decoded)
    registry = registry or default_registry()
    plugins = _build_plugins(doc.get("plugins") or [], registry, decoded)
    _link_prefix_cache(plugins)
    _link_latency_predictions(plugins, decoded)
    raw_profiles = doc.get("schedulingProfiles") or [_implicit_profile(plugins)]
    profiles = _build_profiles(raw_profiles, plugins, decoded)
    _guard_served_models(profiles, plugins)
    handler = _profile_handler(plugins, profiles, registry, decoded)
    try:
        wired = wire_sections(doc, plugins, registry, gates, decoded.where)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    config = EndpointPickerConfig(
        Scheduler(profiles, handler, plugins.values()),
        plugins,
        wired.sections,
        wired.detector.config,
        feature_gates=gates,
        detector=wired.detector,
        parser=wired.parser,
    )
    _attach_metrics_plugins(config, wired.data_plugins)
    return config


def _check_header(doc: dict[str, Any], decoded: Decoded) -> None:
    kind = doc.get("kind", "EndpointPickerConfig")
    if kind != "EndpointPickerConfig":
        raise ConfigError(f"{decoded.where('kind')}: must be EndpointPickerConfig, got {kind!r}")
    api = doc.get("apiVersion", API_VERSION)
    if api not in ACCEPTED_API_VERSIONS:
        accepted = ", ".join(ACCEPTED_API_VERSIONS)
        raise ConfigError(f"{decoded.where('apiVersion')}: must be one of {accepted}, got {api!r}")


def _feature_gates(doc: dict[str, Any], decoded: Decoded) -> frozenset[str]:
    gates = doc.get("featureGates") or []
    for i, gate in enumerate(gates):
        if gate not in FEATURE_GATES:
            known = ", ".join(FEATURE_GATES)
            raise ConfigError(
                f"{decoded.where(f'featureGates[{i}]')}: feature gate {gate!r} is unknown or unregistered"
                f" (known: {known})"
            )
    return frozenset(gates)


def _build_plugins(raw: list[Any], registry: PluginRegistry, decoded: Decoded) -> dict[str, Plugin]:
    handle = PluginHandle()
    for i, spec in enumerate(raw):
        where = decoded.where(f"plugins[{i}]")
        if not isinstance(spec, dict) or not spec.get("type"):
            raise ConfigError(f"{where}: plugin {(spec or {}).get('name', '')!r} is missing a type")
        name = spec.get("name") or spec["type"]
        if name in handle.plugins:
            raise ConfigError(f"{where}: duplicate plugin name {name!r}")
        if not registry.knows(spec["type"]):
            raise ConfigError(
                f"{decoded.where(f'plugins[{i}].type')}: {_unregistered(spec['type'], registry)}"
            )
        params = spec.get("parameters") or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{decoded.where(f'plugins[{i}].parameters')}: must be a mapping")
        try:
            handle.plugins[name] = registry.create(spec["type"], name, params, handle)
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(
                f"{where}: failed to create plugin {name!r} (type: {spec['type']}): {exc}"
            ) from exc
    return handle.plugins


def _unregistered(type_name: str, registry: PluginRegistry) -> str:
    close = difflib.get_close_matches(type_name, registry.types(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"plugin type {type_name!r} is not registered{hint}"


def _link_prefix_cache(plugins: dict[str, Plugin]) -> None:
    """One approximate prefix index per config, as upstream's single producer: the first
    prefix-cache-scorer's (a producer shares it), else the first producer's."""
    scorers = [p for p in plugins.values() if type(p) is PrefixCacheScorer]
    producers = [p for p in plugins.values() if isinstance(p, ApproxPrefixCacheProducer)]
    if scorers:
        for producer in producers:
            producer.share(scorers[0])
    prefix: Any = scorers[0] if scorers else (producers[0] if producers else None)
    for plugin in plugins.values():
        if isinstance(plugin, PrefixCacheConsumer):
            plugin.link_prefix_cache(prefix)


def _link_latency_predictions(plugins: dict[str, Plugin], decoded: Decoded) -> None:
    """One predictor per config, as upstream's single producer: the first
    predicted-latency-producer's; its consumers read its predictions."""
    producers = [p for p in plugins.values() if isinstance(p, PredictedLatencyProducer)]
    if len(producers) > 1:
        log.warning("several predicted-latency-producers; %r serves every consumer", producers[0].name)
    source = producers[0] if producers else None
    for i, (name, plugin) in enumerate(plugins.items()):
        if isinstance(plugin, LatencyPredictionConsumer):
            try:
                plugin.link_latency_predictions(source)
            except ValueError as exc:
                raise ConfigError(f"{decoded.where(f'plugins[{i}].parameters')}: {name}: {exc}") from None


def _implicit_profile(plugins: dict[str, Plugin]) -> dict[str, Any]:
    refs = [
        {"pluginRef": name}
        for name, p in plugins.items()
        if isinstance(p, Filter | Scorer | Picker) and not isinstance(p, ProfileHandler)
    ]
    return {"name": "default", "plugins": refs}


def _build_profiles(
    raw: list[Any], plugins: dict[str, Plugin], decoded: Decoded
) -> dict[str, SchedulingProfile]:
    profiles: dict[str, SchedulingProfile] = {}
    for i, spec in enumerate(raw):
        where = decoded.where(f"schedulingProfiles[{i}]")
        if not spec.get("name"):
            raise ConfigError(f"{where}: schedulingProfiles[{i}] is missing a name")
        if spec["name"] in profiles:
            raise ConfigError(f"{where}: schedulingProfiles[{i}] has duplicate name {spec['name']!r}")
        profile = SchedulingProfile(spec["name"])
        seen: set[str] = set()
        for j, ref in enumerate(spec.get("plugins") or []):
            _add_to_profile(
                profile, ref, plugins, seen, decoded.where(f"schedulingProfiles[{i}].plugins[{j}]")
            )
        if profile.picker is None:
            profile.picker = _default_picker(plugins)
        profiles[profile.name] = profile
    return profiles


def _guard_served_models(profiles: dict[str, SchedulingProfile], plugins: dict[str, Plugin]) -> None:
    if any(isinstance(p, ServedModelFilter) for p in plugins.values()):
        return  # the config places it (or leaves it out) on purpose
    guard = ServedModelFilter()
    for profile in profiles.values():
        profile.filters.insert(0, guard)


def _default_picker(plugins: dict[str, Plugin]) -> Picker:
    existing = plugins.get(MaxScorePicker.type_name)
    if isinstance(existing, MaxScorePicker):
        return existing
    return MaxScorePicker()


def _add_to_profile(
    profile: SchedulingProfile, ref: dict[str, Any], plugins: dict[str, Plugin], seen: set[str], where: str
) -> None:
    name = ref.get("pluginRef")
    if not name:
        raise ConfigError(f"{where}: schedulingProfiles[{profile.name}] entry is missing a 'pluginRef'")
    if name not in plugins:
        raise ConfigError(f"{where}: schedulingProfiles[{profile.name}] references undefined plugin {name!r}")
    if name in seen:
        raise ConfigError(f"{where}: plugin {name!r} listed twice in profile {profile.name}")
    seen.add(name)
    plugin = plugins[name]
    if isinstance(plugin, Filter):
        profile.filters.append(plugin)
    if isinstance(plugin, Scorer):
        weight = ref.get("weight")
        weight = 1 if weight is None else weight
        if weight < 0:
            raise ConfigError(f"{where}: weight must not be negative, got {weight!r}")
        profile.scorers.append(WeightedScorer(plugin, float(weight)))
    if isinstance(plugin, Picker):
        if profile.picker is not None:
            raise ConfigError(
                f"{where}: failed to set {name!r} as picker, already have a registered picker plugin"
                f" {profile.picker.name!r}"
            )
        profile.picker = plugin
    if isinstance(plugin, PostPick):
        profile.post_pick.append(plugin)
    # Anything else (a parser, a data producer) is accepted and has no step here, as upstream.


def _profile_handler(
    plugins: dict[str, Plugin],
    profiles: dict[str, SchedulingProfile],
    registry: PluginRegistry,
    decoded: Decoded,
) -> ProfileHandler:
    handlers = [p for p in plugins.values() if isinstance(p, ProfileHandler)]
    if len(handlers) > 1:
        names = ", ".join(repr(h.name) for h in handlers)
        raise ConfigError(
            f"{decoded.where('plugins')}: multiple profile handlers found ({names}); only one is allowed"
        )
    if handlers:
        handler = handlers[0]
        if handler.type_name == "single-profile-handler" and len(profiles) > 1:
            raise ConfigError(
                f"{decoded.where('schedulingProfiles')}: "
                "SingleProfileHandler cannot support multiple scheduling profiles"
            )
        if isinstance(handler, ChecksProfiles):
            try:
                handler.check_profiles(list(profiles))
            except ValueError as exc:
                raise ConfigError(f"{decoded.where('schedulingProfiles')}: {handler.name}: {exc}") from exc
        return handler
    if len(profiles) > 1:
        raise ConfigError(
            f"{decoded.where('schedulingProfiles')}: no profile handler configured"
            " (several schedulingProfiles need one, e.g. disagg-profile-handler)"
        )
    default = registry.create("single-profile-handler", "single-profile-handler", {})
    assert isinstance(default, ProfileHandler)
    return default


def _attach_metrics_plugins(config: EndpointPickerConfig, data_plugins: list[Plugin]) -> None:
    for plugin in data_plugins:
        if isinstance(plugin, ModelServerMetrics):
            config.metric_mappings = plugin.mappings
        elif isinstance(plugin, MetricsDataSource):
            config.metrics_scheme, config.metrics_path = plugin.scheme, plugin.path
            config.metrics_insecure_skip_verify = plugin.insecure_skip_verify
