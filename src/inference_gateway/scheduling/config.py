"""EndpointPickerConfig (inference.networking.x-k8s.io/v1alpha1) -> a Scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from inference_gateway.scheduling.interfaces import (
    Filter,
    Picker,
    Plugin,
    PostPick,
    ProfileHandler,
    Scorer,
)
from inference_gateway.scheduling.profile import Scheduler, SchedulingProfile, WeightedScorer
from inference_gateway.scheduling.registry import PluginRegistry, default_registry

API_VERSION = "inference.networking.x-k8s.io/v1alpha1"

DEFAULT_CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: max-score-picker
"""


class ConfigError(ValueError):
    pass


@dataclass
class EndpointPickerConfig:
    """The parsed config; `sections` keeps non-scheduling sections (e.g. flowControl)."""

    scheduler: Scheduler
    plugins: dict[str, Plugin]
    sections: dict[str, Any] = field(default_factory=dict)


def load_config(
    text: str | None = None, registry: PluginRegistry | None = None, source: str = "EndpointPickerConfig"
) -> EndpointPickerConfig:
    try:
        doc = yaml.safe_load(text if text is not None else DEFAULT_CONFIG)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: must be a YAML mapping")
    if doc.get("kind", "EndpointPickerConfig") != "EndpointPickerConfig":
        raise ConfigError(f"{source}: kind must be EndpointPickerConfig, got {doc.get('kind')!r}")
    registry = registry or default_registry()
    plugins = _build_plugins(doc.get("plugins") or [], registry, source)
    profiles = _build_profiles(doc.get("schedulingProfiles") or [], plugins, source)
    handler = _profile_handler(plugins, profiles, registry)
    sections = {
        k: v for k, v in doc.items() if k not in {"apiVersion", "kind", "plugins", "schedulingProfiles"}
    }
    return EndpointPickerConfig(Scheduler(profiles, handler), plugins, sections)


def _build_plugins(raw: list[Any], registry: PluginRegistry, source: str) -> dict[str, Plugin]:
    plugins: dict[str, Plugin] = {}
    for i, spec in enumerate(raw):
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            raise ConfigError(f"{source}: plugins[{i}].type is required")
        name = spec.get("name") or spec["type"]
        if name in plugins:
            raise ConfigError(f"{source}: plugins[{i}]: duplicate plugin name {name!r}")
        params = spec.get("parameters") or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{source}: plugins[{i}].parameters must be a mapping")
        try:
            plugins[name] = registry.create(spec["type"], name, params)
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"{source}: plugins[{i}] ({name}): {exc}") from exc
    return plugins


def _build_profiles(raw: list[Any], plugins: dict[str, Plugin], source: str) -> dict[str, SchedulingProfile]:
    if not raw:
        raise ConfigError(f"{source}: schedulingProfiles must list at least one profile")
    profiles: dict[str, SchedulingProfile] = {}
    for i, spec in enumerate(raw):
        where = f"{source}: schedulingProfiles[{i}]"
        if not isinstance(spec, dict) or not spec.get("name"):
            raise ConfigError(f"{where}.name is required")
        profile = SchedulingProfile(spec["name"])
        for j, ref in enumerate(spec.get("plugins") or []):
            _add_to_profile(profile, ref, plugins, f"{where}.plugins[{j}]")
        if profile.picker is None:
            raise ConfigError(f"{where} ({profile.name}): needs a picker plugin")
        profiles[profile.name] = profile
    return profiles


def _add_to_profile(profile: SchedulingProfile, ref: Any, plugins: dict[str, Plugin], where: str) -> None:
    if not isinstance(ref, dict) or ref.get("pluginRef") not in plugins:
        name = ref.get("pluginRef") if isinstance(ref, dict) else ref
        raise ConfigError(f"{where}: pluginRef {name!r} names no plugin in `plugins`")
    plugin = plugins[ref["pluginRef"]]
    used = False
    if isinstance(plugin, Filter):
        profile.filters.append(plugin)
        used = True
    if isinstance(plugin, Scorer):
        weight = ref.get("weight", 1)
        if not isinstance(weight, int | float) or weight < 0:
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
        used = True
    if not used:
        raise ConfigError(f"{where}: plugin {plugin.name!r} is not a filter, scorer or picker")


def _profile_handler(
    plugins: dict[str, Plugin], profiles: dict[str, SchedulingProfile], registry: PluginRegistry
) -> ProfileHandler:
    handlers = [p for p in plugins.values() if isinstance(p, ProfileHandler)]
    if len(handlers) > 1:
        raise ConfigError("at most one profile handler plugin may be configured")
    if handlers:
        return handlers[0]
    if len(profiles) > 1:
        raise ConfigError("several schedulingProfiles need a profile handler plugin")
    handler = registry.create("single-profile-handler", "single-profile-handler", {})
    assert isinstance(handler, ProfileHandler)
    return handler
