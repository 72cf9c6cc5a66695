"""Plugin registry: plugins are built by type name from EndpointPickerConfig parameters.

Besides the built-ins, an installed package may declare plugin types as entry points of the
group `inference_gateway.plugins` (name = the type name used in YAML, value = the factory,
usually the plugin class). They are looked up only for a type the registry does not know, so
configs naming built-ins pay nothing for the scan (docs/plugins.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from inference_gateway.scheduling.interfaces import Plugin

PluginFactory = Callable[[str, dict[str, Any]], Plugin]
HandleFactory = Callable[[str, dict[str, Any], "PluginHandle"], Plugin]
ENTRY_POINT_GROUP = "inference_gateway.plugins"


@dataclass
class PluginHandle:
    """What a factory may see while the config is being built: the plugins defined before it."""

    plugins: dict[str, Plugin] = field(default_factory=dict)

    def plugin(self, name: str) -> Plugin | None:
        return self.plugins.get(name)


class PluginRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, PluginFactory] = {}
        self._handle_factories: dict[str, HandleFactory] = {}

    def register(self, type_name: str, factory: PluginFactory) -> None:
        self._check_new(type_name)
        self._factories[type_name] = factory

    def register_with_handle(self, type_name: str, factory: HandleFactory) -> None:
        """For plugins that reference other plugins (e.g. decision-tree filters)."""
        self._check_new(type_name)
        self._handle_factories[type_name] = factory

    def _check_new(self, type_name: str) -> None:
        if type_name in self._factories or type_name in self._handle_factories:
            raise ValueError(f"plugin type {type_name!r} registered twice")

    def knows(self, type_name: str) -> bool:
        """A built-in or already registered type, or one an installed package declares."""
        known = type_name in self._factories or type_name in self._handle_factories
        return known or self._discover(type_name)

    def _discover(self, type_name: str) -> bool:
        for entry_point in entry_points(group=ENTRY_POINT_GROUP, name=type_name):
            self.register(type_name, entry_point.load())
            return True
        return False

    def create(
        self, type_name: str, name: str, parameters: dict[str, Any], handle: PluginHandle | None = None
    ) -> Plugin:
        self.knows(type_name)
        if type_name in self._handle_factories:
            return self._handle_factories[type_name](name, parameters, handle or PluginHandle())
        try:
            factory = self._factories[type_name]
        except KeyError:
            known = ", ".join(self.types())
            raise ValueError(f"unknown plugin type {type_name!r} (known: {known})") from None
        return factory(name, parameters)

    def types(self) -> list[str]:
        return sorted({*self._factories, *self._handle_factories})


def default_registry() -> PluginRegistry:
    """A registry holding every built-in plugin (scheduling, and flow-control policies)."""
    from inference_gateway.flowcontrol.policies import register_flow_control_plugins
    from inference_gateway.scheduling.plugins import register_builtin

    registry = PluginRegistry()
    register_builtin(registry)
    register_flow_control_plugins(registry)
    return registry
