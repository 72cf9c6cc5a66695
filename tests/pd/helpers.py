"""Builders for the P/D tests: role-labelled endpoints, EPP configs, metric scraping."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from inference_gateway.api.types import Criticality, ObjectRef
from inference_gateway.datastore.endpoint import Endpoint, EndpointMetrics
from inference_gateway.local.stack import LocalStack
from inference_gateway.scheduling.plugins.by_role_filter import ROLE_LABEL
from inference_gateway.scheduling.types import SchedulingRequest

MODEL = "meta-llama/Llama-2-7b-hf"

# llm-d's P/D guide config (pd-profile-handler + prefix-based-pd-decider), as our loader takes it.
PD_CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefill-header-handler
- type: prefix-cache-scorer
- type: queue-scorer
- type: prefill-filter
- type: decode-filter
- type: max-score-picker
- type: prefix-based-pd-decider
  parameters:
    nonCachedTokens: {threshold}
- type: pd-profile-handler
  parameters:
    deciderPluginName: prefix-based-pd-decider
schedulingProfiles:
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: max-score-picker
  - pluginRef: prefix-cache-scorer
    weight: 2
  - pluginRef: queue-scorer
    weight: 1
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: max-score-picker
  - pluginRef: prefix-cache-scorer
    weight: 2
  - pluginRef: queue-scorer
    weight: 1
"""


def pd_config(threshold: int = 0) -> str:
    return PD_CONFIG.replace("{threshold}", str(threshold))


def endpoint(name: str, ip: str, role: str | None = None, waiting: int = 0) -> Endpoint:
    labels = {"app": "llm"} | ({ROLE_LABEL: role} if role is not None else {})
    metrics = EndpointMetrics(waiting_queue=waiting, updated_at=time.monotonic())
    return Endpoint(f"{name}-rank-0", ObjectRef("default", name), ip, 8000, labels, metrics=metrics)


def request(prompt: str, request_id: str = "req") -> SchedulingRequest:
    return SchedulingRequest(request_id, MODEL, MODEL, prompt=prompt, criticality=Criticality.STANDARD)


async def scrape(address: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a simulated pod's /metrics, keyed by (name, labels)."""
    async with aiohttp.ClientSession() as s, s.get(f"http://{address}/metrics") as r:
        text = await r.text()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def by_source(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[str, float]:
    """vllm:prompt_tokens_by_source_total per source label."""
    out = {}
    for (name, labels), value in samples.items():
        if name == "vllm:prompt_tokens_by_source_total":
            out[dict(labels)["source"]] = value
    return out


def one_pod_per_role(
    roles: Sequence[str], extra_args: Mapping[str, list[str]] | None = None
) -> Callable[[dict[str, Any]], None]:
    """A LocalFleet edit: one role-labelled pod per role instead of the example's plain pods,
    each role with its own address block and any extra simulator arguments."""

    def edit(doc: dict[str, Any]) -> None:
        if doc["kind"] != "LocalFleet":
            return
        base = doc["spec"]["pods"][0]
        octets = base["addressBase"].split(".")
        groups = []
        for i, role in enumerate(roles):
            group = {**base, "replicas": 1, "namePrefix": role}
            group["labels"] = {**base["labels"], ROLE_LABEL: role}
            group["addressBase"] = ".".join([*octets[:2], str(200 + i), "1"])
            if extra_args and role in extra_args:
                args = list(base["simulator"].get("args") or []) + extra_args[role]
                group["simulator"] = {**base["simulator"], "args": args}
            groups.append(group)
        doc["spec"]["pods"] = groups

    return edit


def role_address(stack: LocalStack, role: str) -> str:
    return next(p for p in stack.pods if p.pod.labels.get(ROLE_LABEL) == role).addresses[0]
