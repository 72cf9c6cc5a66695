"""A P/D EndpointPickerConfig given for one pool only: that pool's decisions name the prefill
pod in x-prefiller-host-port and strip a client-forged copy; other pools leave it alone."""

from __future__ import annotations

import time

import orjson

from inference_gateway.api.manifests import ResourceSet
from inference_gateway.api.types import EndpointPickerRef, InferenceModel, InferencePool, ObjectRef, Pod
from inference_gateway.datastore.store import Datastore
from inference_gateway.epp import EndpointPicker, EPPOptions
from inference_gateway.requestcontrol.director import RoutingDecision
from inference_gateway.scheduling.plugins.by_role_filter import ROLE_LABEL
from inference_gateway.scheduling.plugins.pd_profile_handler import PREFILL_HEADER
from tests.pd.helpers import pd_config

FORGED = "169.254.169.254:80"
LONG = "Summarise the quarterly report on revenue, churn and hiring plans. " * 60


def store() -> Datastore:
    pools, models, pods = [], [], []
    for n, pool in enumerate(("split", "whole", "plain")):
        ref = ObjectRef("default", pool)
        pools.append(InferencePool(ref, {"app": pool}, (8000,), EndpointPickerRef("epp")))
        models.append(InferenceModel(ObjectRef("default", f"m-{pool}"), f"m-{pool}", ref))
        for i, role in enumerate(("prefill", "decode")):
            labels = {"app": pool, ROLE_LABEL: role}
            pods.append(Pod(ObjectRef("default", f"{pool}-{role}"), f"10.0.{n}.{i + 1}", labels))
    ds = Datastore()
    ds.replace_all(ResourceSet(pools=pools, models=models, pods=pods))
    for e in ds.endpoints():
        e.metrics.updated_at = time.monotonic()
    return ds


def epp() -> EndpointPicker:
    configs = {"split": pd_config(0), "default/whole": pd_config(1_000_000)}
    options = EPPOptions(metrics_port=None, health_port=None, pool_configs=configs)
    return EndpointPicker(options, store=store())


async def route(picker: EndpointPicker, model: str) -> RoutingDecision:
    ctx = picker.director.new_context({PREFILL_HEADER: FORGED})
    decision = await picker.director.route(ctx, orjson.dumps({"model": model, "prompt": LONG}))
    picker.director.on_complete(ctx)
    return decision


async def test_per_pool_pd_config_sets_the_prefill_header_over_a_forged_one() -> None:
    decision = await route(epp(), "m-split")
    assert decision.destination == "10.0.0.2:8000"  # the decode pod
    assert decision.headers[PREFILL_HEADER] == "10.0.0.1:8000"  # the prefill pod, not the forgery


async def test_per_pool_pd_config_strips_a_forged_header_when_it_does_not_split() -> None:
    decision = await route(epp(), "m-whole")
    assert decision.destination == "10.0.1.2:8000"
    assert PREFILL_HEADER not in decision.headers
    assert decision.remove_headers == (PREFILL_HEADER,)


async def test_pools_without_a_pd_config_neither_set_nor_strip_it() -> None:
    decision = await route(epp(), "m-plain")
    assert PREFILL_HEADER not in decision.headers
    assert decision.remove_headers == ()
