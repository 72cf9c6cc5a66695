"""Resolve the requested model name to a pool, an InferenceModel/objective, and a target model."""

from __future__ import annotations

import random
from dataclasses import dataclass

from inference_gateway.api.types import Criticality, InferenceModel, RewriteTarget, TargetModel
from inference_gateway.datastore.store import Datastore, PoolView
from inference_gateway.requestcontrol.errors import GatewayError

OBJECTIVE_HEADER = "x-gateway-inference-objective"
REWRITE_HEADER = "x-gateway-model-name-rewrite"
POOL_HEADER = "x-gateway-inference-pool"


@dataclass(slots=True)
class Resolution:
    view: PoolView
    model: str
    target_model: str
    criticality: Criticality
    priority: int
    objective: str
    inference_model: InferenceModel | None = None


class ModelResolver:
    def __init__(self, store: Datastore, rng: random.Random | None = None) -> None:
        self.store = store
        self.rng = rng or random.Random()

    def resolve(self, model: str, headers: dict[str, str]) -> Resolution:
        view, inference_model = self._find_pool(model, headers.get(POOL_HEADER))
        criticality = inference_model.criticality if inference_model else Criticality.STANDARD
        priority = int(criticality)
        objective = ""
        objective_name = headers.get(OBJECTIVE_HEADER)
        if objective_name:
            obj = view.objectives.get(objective_name)
            if obj is None:
                raise GatewayError(
                    404, f"InferenceObjective {objective_name!r} not found", "objective_not_found"
                )
            priority, objective = obj.priority, objective_name
            criticality = _criticality_of(priority)
        target = self._target(model, view, inference_model, headers.get(REWRITE_HEADER))
        return Resolution(view, model, target, criticality, priority, objective, inference_model)

    def _find_pool(self, model: str, pool_name: str | None) -> tuple[PoolView, InferenceModel | None]:
        views = self.store.pools()
        if pool_name:
            views = [v for v in views if pool_name in (v.pool.ref.name, str(v.pool.ref))]
            if not views:
                raise GatewayError(404, f"InferencePool {pool_name!r} not found", "pool_not_found")
        if not views:
            raise GatewayError(503, "no InferencePool is configured", "no_pool")
        for view in views:
            if model in view.models:
                return view, view.models[model]
        for view in views:
            if model in view.rewrites or _served_by(view, model):
                return view, None
        if len(views) == 1 and not any(e.metrics.updated_at for e in views[0].endpoints):
            # Nothing scraped yet: let the model server decide rather than refuse.
            return views[0], None
        raise GatewayError(404, f"The model `{model}` does not exist.", "model_not_found")

    def _target(self, model: str, view: PoolView, im: InferenceModel | None, override: str | None) -> str:
        if override:
            return override
        if im is not None and im.target_models:
            return _weighted_target(im.target_models, self.rng)
        rewrite = view.rewrites.get(model)
        if rewrite is not None:
            for rule in rewrite.rules:
                if model in rule.match_models:
                    return _weighted_rewrite(rule.targets, self.rng)
        return model


def _served_by(view: PoolView, model: str) -> bool:
    return any(model in e.metrics.served_models or model in e.metrics.active_adapters for e in view.endpoints)


def _criticality_of(priority: int) -> Criticality:
    if priority < 0:
        return Criticality.SHEDDABLE
    return Criticality.CRITICAL if priority > 0 else Criticality.STANDARD


def _weighted_target(targets: tuple[TargetModel, ...], rng: random.Random) -> str:
    weights = [t.weight if t.weight is not None else 1 for t in targets]
    return rng.choices([t.name for t in targets], weights=weights)[0]


def _weighted_rewrite(targets: tuple[RewriteTarget, ...], rng: random.Random) -> str:
    weights = [t.weight for t in targets]
    if not any(weights):
        return targets[0].model_rewrite
    return rng.choices([t.model_rewrite for t in targets], weights=weights)[0]
