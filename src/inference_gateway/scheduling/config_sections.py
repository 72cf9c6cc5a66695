"""The non-scheduling sections of EndpointPickerConfig, resolved as upstream's loader does.

`parser.pluginRef` (default openai-parser), `saturationDetector.pluginRef` (default
utilization-detector; both are created when not configured), `dataLayer.sources` (data sources
and their extractors) and `flowControl`, which counts only when the `flowControl` feature gate is
on. References are checked here so a bad one fails at load time with the field's file:line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inference_gateway.flowcontrol.config import FlowControlConfigError, parse_flow_control
from inference_gateway.scheduling.interfaces import DataSource, Extractor, Plugin, RequestParser
from inference_gateway.scheduling.plugins.metrics_data_source import MetricsDataSource
from inference_gateway.scheduling.plugins.model_server_metrics import ModelServerMetrics
from inference_gateway.scheduling.registry import PluginRegistry
from inference_gateway.scheduling.saturation import SaturationDetector

log = logging.getLogger(__name__)

DEFAULT_PARSER = "openai-parser"
DEFAULT_DETECTOR = "utilization-detector"
LEGACY_SATURATION_KEYS = ("queueDepthThreshold", "kvCacheUtilThreshold", "metricsStalenessThreshold")
SECTIONS = ("featureGates", "saturationDetector", "flowControl", "dataLayer", "parser")

Where = Callable[[str], str]


@dataclass
class WiredSections:
    sections: dict[str, Any]
    detector: SaturationDetector
    parser: RequestParser
    data_plugins: list[Plugin] = field(default_factory=list)


def wire_sections(
    doc: dict[str, Any],
    plugins: dict[str, Plugin],
    registry: PluginRegistry,
    gates: frozenset[str],
    where: Where,
) -> WiredSections:
    """Raises ValueError with a `file:line: path: ...` message. May add default plugins."""
    sections = {k: doc[k] for k in SECTIONS if doc.get(k) is not None}
    sections["flowControl"] = _flow_control(doc.get("flowControl"), plugins, gates, where)
    return WiredSections(
        sections,
        _saturation_detector(doc.get("saturationDetector"), plugins, registry, where),
        _parser(doc.get("parser"), plugins, registry, where),
        [] if "enableLegacyMetrics" in gates else _data_layer(doc.get("dataLayer"), plugins, where),
    )


def _parser(
    section: dict[str, Any] | None, plugins: dict[str, Plugin], registry: PluginRegistry, where: Where
) -> RequestParser:
    ref = (section or {}).get("pluginRef") or DEFAULT_PARSER
    if ref not in plugins and DEFAULT_PARSER not in plugins:
        plugins[DEFAULT_PARSER] = registry.create(DEFAULT_PARSER, DEFAULT_PARSER, {})
    plugin = plugins.get(ref)
    if plugin is None:
        raise ValueError(
            f"{where('parser.pluginRef')}: the configured parser {ref!r} is not loaded (no such plugin)"
        )
    if not isinstance(plugin, RequestParser):
        raise ValueError(
            f"{where('parser.pluginRef')}: plugin {ref!r} ({plugin.type_name}) is not a parser plugin"
        )
    return plugin


def _saturation_detector(
    section: dict[str, Any] | None, plugins: dict[str, Plugin], registry: PluginRegistry, where: Where
) -> SaturationDetector:
    section = section or {}
    ref = section.get("pluginRef") or DEFAULT_DETECTOR
    legacy = {k: section[k] for k in LEGACY_SATURATION_KEYS if k in section}
    if legacy:
        if ref in plugins:
            raise ValueError(
                f"{where('saturationDetector')}: {', '.join(legacy)} configure the default detector;"
                f" set them as parameters of plugin {ref!r} instead"
            )
        log.warning(
            "%s: %s are pre-v1.2 keys; upstream now reads them as utilization-detector parameters",
            where("saturationDetector"),
            ", ".join(legacy),
        )
    if ref not in plugins:
        if ref != DEFAULT_DETECTOR:
            at = where("saturationDetector.pluginRef")
            raise ValueError(f"{at}: saturation detector references undefined plugin {ref!r}")
        try:
            plugins[ref] = registry.create(DEFAULT_DETECTOR, DEFAULT_DETECTOR, legacy)
        except ValueError as exc:
            raise ValueError(f"{where('saturationDetector')}: {exc}") from None
    plugin = plugins[ref]
    if not isinstance(plugin, SaturationDetector):
        at = where("saturationDetector.pluginRef")
        raise ValueError(f"{at}: plugin {ref!r} ({plugin.type_name}) is not a saturation detector")
    return plugin


def _data_layer(section: dict[str, Any] | None, plugins: dict[str, Plugin], where: Where) -> list[Plugin]:
    if section is None:  # upstream's default: metrics-data-source + core-metrics-extractor
        return [p for p in plugins.values() if isinstance(p, MetricsDataSource | ModelServerMetrics)]
    used: list[Plugin] = []
    for i, source in enumerate(section.get("sources") or []):
        path = f"dataLayer.sources[{i}]"
        plugin = plugins.get(source.get("pluginRef") or "")
        if not isinstance(plugin, DataSource):
            raise ValueError(
                f"{where(path + '.pluginRef')}: the plugin {source.get('pluginRef')!r} is not a data source"
            )
        used.append(plugin)
        for j, ref in enumerate(source.get("extractors") or []):
            extractor = plugins.get(ref.get("pluginRef") or "")
            epath = f"{path}.extractors[{j}].pluginRef"
            if not isinstance(extractor, Extractor):
                raise ValueError(f"{where(epath)}: the plugin {ref.get('pluginRef')!r} is not an extractor")
            if not plugin.accepts_extractor(extractor):
                raise ValueError(
                    f"{where(epath)}: extractor {extractor.name!r} does not read {plugin.name!r}'s data"
                )
            used.append(extractor)
    return used


def _flow_control(
    section: dict[str, Any] | None, plugins: dict[str, Plugin], gates: frozenset[str], where: Where
) -> dict[str, Any]:
    if "flowControl" not in gates:
        if section and section.get("enabled") is True:
            raise ValueError(
                f"{where('flowControl.enabled')}: flow control needs `featureGates: [flowControl]`"
            )
        if section:
            log.warning(
                "%s: ignored: flow control is off unless featureGates lists flowControl", where("flowControl")
            )
        return {"enabled": False}
    try:
        parse_flow_control(section or {}, plugins)
    except FlowControlConfigError as exc:
        raise ValueError(f"{where('flowControl')}: {exc}") from None
    return dict(section or {})
