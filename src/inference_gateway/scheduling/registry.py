"""Plugin registry: plugins are built by type name from EndpointPickerConfig parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inference_gateway.scheduling.interfaces import Plugin

PluginFactory = Callable[[str, dict[str, Any]], Plugin]


class PluginRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, PluginFactory] = {}

    def register(self, type_name: str, factory: PluginFactory) -> None:
        if type_name in self._factories:
            raise ValueError(f"plugin type {type_name!r} registered twice")
        self._factories[type_name] = factory

    def create(self, type_name: str, name: str, parameters: dict[str, Any]) -> Plugin:
        try:
            factory = self._factories[type_name]
        except KeyError:
            known = ", ".join(sorted(self._factories))
            raise ValueError(f"unknown plugin type {type_name!r} (known: {known})") from None
        return factory(name, parameters)

    def types(self) -> list[str]:
        return sorted(self._factories)


def default_registry() -> PluginRegistry:
    """A registry holding every built-in plugin."""
    from inference_gateway.scheduling.plugins import register_builtin

    registry = PluginRegistry()
    register_builtin(registry)
    return registry
