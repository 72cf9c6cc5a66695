"""models-data-source: where and how often the EPP reads each server's model list.

Not a scheduling step: the EPP's metrics.inventory.ModelInventory reads these settings (it runs
with the defaults when no such plugin is configured) and attaches each endpoint's base models
and LoRA adapters as the `models.served` attribute, which served-model-filter, the model
resolver and lora-affinity scoring read.

Parameters:
  path: the OpenAI model-list path (default /v1/models, as vLLM, SGLang and TensorRT-LLM serve)
  interval: how often each server's list is re-read (default 30s); a server's 404 for a model
    also triggers a re-read
  timeout: per-request timeout (default 2s)
  scheme: http or https (default: the metrics-data-source's scheme); insecureSkipVerify: skip
    certificate checks on https (default true, as llm-d)

It is a data source of llm-d's `models-data-extractor`, which names what it reads; the
inventory attaches the lists whether or not an extractor is declared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from inference_gateway.metrics.inventory import InventoryConfig
from inference_gateway.scheduling.params import get_bool, get_duration_s, get_str


class ModelsDataSource:
    type_name = "models-data-source"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        unknown = set(params) - {"path", "interval", "timeout", "scheme", "insecureSkipVerify"}
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))}")
        self.name = name
        defaults = InventoryConfig()
        path = get_str(params, "path", defaults.path)
        if not path.startswith("/"):
            raise ValueError(f"parameter 'path' must start with '/', got {path!r}")
        interval = get_duration_s(params, "interval", defaults.interval_s)
        timeout = get_duration_s(params, "timeout", defaults.timeout_s)
        if interval <= 0 or timeout <= 0:
            raise ValueError("parameters 'interval' and 'timeout' must be > 0")
        self.scheme_given = "scheme" in params
        scheme = get_str(params, "scheme", defaults.scheme)
        if scheme not in ("http", "https"):
            raise ValueError(f"parameter 'scheme' must be http or https, got {scheme!r}")
        insecure = get_bool(params, "insecureSkipVerify", defaults.insecure_skip_verify)
        self.config = InventoryConfig(
            path=path, scheme=scheme, interval_s=interval, timeout_s=timeout, insecure_skip_verify=insecure
        )

    def accepts_extractor(self, extractor: Any) -> bool:
        return getattr(extractor, "extracts", "") == "models"


def declared_inventory_config(plugins: Iterable[Any], metrics_scheme: str) -> InventoryConfig:
    """The inventory's settings: the first models-data-source among `plugins`, else the
    defaults; the scheme follows the metrics-data-source's unless the models source names one."""
    declared = next((p for p in plugins if isinstance(p, ModelsDataSource)), None)
    if declared is not None and declared.scheme_given:
        return declared.config
    config = declared.config if declared is not None else InventoryConfig()
    return replace(config, scheme=metrics_scheme)


class ModelsDataExtractor:
    """llm-d's `models-data-extractor`: turns models-data-source's answers into each endpoint's
    served models (base models and LoRA adapters with their parents). The inventory does that
    here; the plugin names the link so llm-d configs load and are checked."""

    type_name = "models-data-extractor"
    extracts = "models"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        if parameters:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(parameters))} (it takes none)")
        self.name = name
