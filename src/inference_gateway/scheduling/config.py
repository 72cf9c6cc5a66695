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

from dataclasses import dataclass, field
from typing import Any

import yaml

from inference_gateway.metrics.mappings import MappingRegistry
from inference_gateway.scheduling.interfaces import (
    ChecksProfiles,
    Filter,
    Picker,
    Plugin,
    PostPick,
    ProfileHandler,
    Scorer,
)
from inference_gateway.scheduling.plugins.max_score_picker import MaxScorePicker
from inference_gateway.scheduling.plugins.metrics_data_source import MetricsDataSource
from inference_gateway.scheduling.plugins.model_server_metrics import ModelServerMetrics
from inference_gateway.scheduling.plugins.served_model_filter import ServedModelFilter
from inference_gateway.scheduling.profile import Scheduler, SchedulingProfile, WeightedScorer
from inference_gateway.scheduling.registry import PluginHandle, PluginRegistry, default_registry
from inference_gateway.scheduling.saturation import SaturationConfig, SaturationDetector

API_VERSION = "inference.networking.x-k8s.io/v1alpha1"
ACCEPTED_API_VERSIONS = (API_VERSION, "config.apix.gateway-api-inference-extension.sigs.k8s.io/v1alpha1")
KNOWN_SECTIONS = (
    "featureGates",
    "saturationDetector",
    "flowControl",
    "dataLayer",
    "parser",
    "requestHandler",
)

# Upstream's chart default (config/charts/inferencepool/templates/epp-config.yaml).
DEFAULT_CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
"""


class ConfigError(ValueError):
    pass


@dataclass
class EndpointPickerConfig:
    """The parsed config; `sections` keeps non-scheduling sections (e.g. flowControl)."""

    scheduler: Scheduler
    plugins: dict[str, Plugin]
    sections: dict[str, Any] = field(default_factory=dict)
    saturation: SaturationConfig = field(default_factory=SaturationConfig)
    metric_mappings: MappingRegistry = field(default_factory=MappingRegistry)
    metrics_scheme: str = "http"
    metrics_path: str = "/metrics"
    metrics_insecure_skip_verify: bool = True

    def saturation_detector(self) -> SaturationDetector:
        return SaturationDetector(self.saturation)


def load_config(
    text: str | None = None, registry: PluginRegistry | None = None, source: str = "EndpointPickerConfig"
) -> EndpointPickerConfig:
    doc = _parse_document(text if text is not None else DEFAULT_CONFIG, source)
    registry = registry or default_registry()
    plugins = _build_plugins(doc.get("plugins") or [], registry, source)
    raw_profiles = doc.get("schedulingProfiles") or [_implicit_profile(plugins)]
    profiles = _build_profiles(raw_profiles, plugins, source)
    _guard_served_models(profiles, plugins)
    handler = _profile_handler(plugins, profiles, registry, source)
    sections = {k: v for k, v in doc.items() if k in KNOWN_SECTIONS}
    try:
        saturation = SaturationConfig.from_params(doc.get("saturationDetector"))
    except ValueError as exc:
        raise ConfigError(f"{source}: saturationDetector: {exc}") from None
    config = EndpointPickerConfig(
        Scheduler(profiles, handler, plugins.values()), plugins, sections, saturation
    )
    _attach_metrics_plugins(config)
    return config


def _parse_document(text: str, source: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: must be a YAML mapping")
    if doc.get("kind", "EndpointPickerConfig") != "EndpointPickerConfig":
        raise ConfigError(f"{source}: kind must be EndpointPickerConfig, got {doc.get('kind')!r}")
    api = doc.get("apiVersion", API_VERSION)
    if api not in ACCEPTED_API_VERSIONS:
        accepted = ", ".join(ACCEPTED_API_VERSIONS)
        raise ConfigError(f"{source}: apiVersion must be one of {accepted}, got {api!r}")
    unknown = set(doc) - {"apiVersion", "kind", "plugins", "schedulingProfiles", *KNOWN_SECTIONS}
    if unknown:
        raise ConfigError(f"{source}: unknown top-level field(s): {', '.join(sorted(unknown))}")
    return doc


def _build_plugins(raw: Any, registry: PluginRegistry, source: str) -> dict[str, Plugin]:
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: plugins must be a list")
    handle = PluginHandle()
    for i, spec in enumerate(raw):
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            raise ConfigError(f"{source}: plugins[{i}].type is required")
        name = spec.get("name") or spec["type"]
        if name in handle.plugins:
            raise ConfigError(f"{source}: plugins[{i}]: duplicate plugin name {name!r}")
        params = spec.get("parameters") or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{source}: plugins[{i}].parameters must be a mapping")
        try:
            handle.plugins[name] = registry.create(spec["type"], name, params, handle)
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"{source}: plugins[{i}] ({name}): {exc}") from exc
    return handle.plugins


def _implicit_profile(plugins: dict[str, Plugin]) -> dict[str, Any]:
    refs = [
        {"pluginRef": name}
        for name, p in plugins.items()
        if isinstance(p, Filter | Scorer | Picker) and not isinstance(p, ProfileHandler)
    ]
    return {"name": "default", "plugins": refs}


def _build_profiles(raw: Any, plugins: dict[str, Plugin], source: str) -> dict[str, SchedulingProfile]:
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: schedulingProfiles must be a list")
    profiles: dict[str, SchedulingProfile] = {}
    for i, spec in enumerate(raw):
        where = f"{source}: schedulingProfiles[{i}]"
        if not isinstance(spec, dict) or not spec.get("name"):
            raise ConfigError(f"{where}.name is required")
        if spec["name"] in profiles:
            raise ConfigError(f"{where}: duplicate profile name {spec['name']!r}")
        profile = SchedulingProfile(spec["name"])
        refs = spec.get("plugins") or []
        if not isinstance(refs, list):
            raise ConfigError(f"{where}.plugins must be a list")
        seen: set[str] = set()
        for j, ref in enumerate(refs):
            _add_to_profile(profile, ref, plugins, seen, f"{where}.plugins[{j}]")
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
    profile: SchedulingProfile, ref: Any, plugins: dict[str, Plugin], seen: set[str], where: str
) -> None:
    name = ref.get("pluginRef") if isinstance(ref, dict) else ref
    if not isinstance(ref, dict) or name not in plugins:
        raise ConfigError(f"{where}: pluginRef {name!r} names no plugin in `plugins`")
    if name in seen:
        raise ConfigError(f"{where}: plugin {name!r} listed twice in profile {profile.name}")
    seen.add(name)
    plugin = plugins[name]
    used = False
    if isinstance(plugin, Filter):
        profile.filters.append(plugin)
        used = True
    if isinstance(plugin, Scorer):
        weight = ref.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise ConfigError(f"{where}: weight must be a non-negative number, got {weight!r}")
        profile.scorers.append(WeightedScorer(plugin, float(weight)))
        used = True
    if isinstance(plugin, Picker):
        if profile.picker is not None:
            raise ConfigError(f"{where}: profile {profile.name} has two pickers")
        profile.picker = plugin
        used = True
    if isinstance(plugin, PostPick):
        profile.post_pick.append(plugin)
    if not used:
        raise ConfigError(f"{where}: plugin {name!r} ({plugin.type_name}) is not a filter, scorer or picker")


def _profile_handler(
    plugins: dict[str, Plugin],
    profiles: dict[str, SchedulingProfile],
    registry: PluginRegistry,
    source: str,
) -> ProfileHandler:
    handlers = [p for p in plugins.values() if isinstance(p, ProfileHandler)]
    if len(handlers) > 1:
        raise ConfigError(f"{source}: at most one profile handler plugin may be configured")
    if handlers:
        if isinstance(handlers[0], ChecksProfiles):
            try:
                handlers[0].check_profiles(list(profiles))
            except ValueError as exc:
                raise ConfigError(f"{source}: {handlers[0].name}: {exc}") from exc
        return handlers[0]
    if len(profiles) > 1:
        raise ConfigError(f"{source}: several schedulingProfiles need a profile handler plugin")
    handler = registry.create("single-profile-handler", "single-profile-handler", {})
    assert isinstance(handler, ProfileHandler)
    return handler


def _attach_metrics_plugins(config: EndpointPickerConfig) -> None:
    for plugin in config.plugins.values():
        if isinstance(plugin, ModelServerMetrics):
            config.metric_mappings = plugin.mappings
        elif isinstance(plugin, MetricsDataSource):
            config.metrics_scheme, config.metrics_path = plugin.scheme, plugin.path
            config.metrics_insecure_skip_verify = plugin.insecure_skip_verify
