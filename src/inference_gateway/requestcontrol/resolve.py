"""Resolve the requested model name to a pool, its InferenceModel / rewrite / objective, and the
model name the server will actually see (weighted traffic splitting happens here)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from inference_gateway.api.types import (
    MATCH_ANY_MODEL,
    Criticality,
    InferenceModel,
    InferenceModelRewrite,
    RewriteTarget,
    TargetModel,
)
from inference_gateway.datastore.store import Datastore, PoolView
from inference_gateway.metrics.inventory import can_serve
from inference_gateway.requestcontrol.errors import GatewayError

log = logging.getLogger(__name__)

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
    rewrite: InferenceModelRewrite | None = None

    def labels(self) -> dict[str, str]:
        """What logs and metrics label a request with."""
        return {
            "model_name": self.model,
            "target_model_name": self.target_model,
            "criticality": self.criticality.label,
            "priority": str(self.priority),
            "objective": self.objective,
            "pool": str(self.view.pool.ref),
        }


class ModelResolver:
    """`strict_models`: a model no InferenceModel, rewrite or endpoint knows is a 404 instead of
    being forwarded to the pool with the default priority (upstream's behaviour).
    `default_model`: what a request without `model` asks for; otherwise the pool's only model."""

    def __init__(
        self,
        store: Datastore,
        rng: random.Random | None = None,
        strict_models: bool = False,
        default_model: str | None = None,
    ) -> None:
        self.store = store
        self.rng = rng or random.Random()
        self.strict_models = strict_models
        self.default_model = default_model

    def resolve(self, model: str | None, headers: dict[str, str]) -> Resolution:
        if model is None:
            model = self._default_model(headers)
        view, inference_model = self._find_pool(model, headers.get(POOL_HEADER))
        criticality = inference_model.criticality if inference_model else Criticality.STANDARD
        priority, objective = int(criticality), ""
        objective_name = headers.get(OBJECTIVE_HEADER)
        if objective_name:
            obj = view.objectives.get(objective_name)
            if obj is None:
                # As upstream: an unknown objective means the default priority, not an error.
                log.debug(
                    "InferenceObjective %r not found in pool %s; using defaults",
                    objective_name,
                    view.pool.ref,
                )
            else:
                priority, objective = obj.priority, objective_name
                criticality = Criticality.from_priority(priority)
        rewrite = None if inference_model is not None else _rewrite_for(view, model)
        target = self._target(model, inference_model, rewrite, headers.get(REWRITE_HEADER))
        return Resolution(view, model, target, criticality, priority, objective, inference_model, rewrite)

    def pool_for(self, headers: dict[str, str]) -> PoolView:
        """The pool a request without a model goes to: the named one, or the only one."""
        views = self._views(headers.get(POOL_HEADER))
        if len(views) > 1:
            raise GatewayError(
                400,
                "several InferencePools are served; name one (x-gateway-inference-pool)",
                "ambiguous_pool",
            )
        return views[0]

    def _views(self, pool_name: str | None) -> list[PoolView]:
        views = self.store.pools()
        if pool_name:
            views = [v for v in views if pool_name in (v.pool.ref.name, str(v.pool.ref))]
            if not views:
                raise GatewayError(404, f"InferencePool {pool_name!r} not found", "pool_not_found")
        if not views:
            raise GatewayError(503, "no InferencePool is configured", "no_pool")
        return views

    def _default_model(self, headers: dict[str, str]) -> str:
        if self.default_model:
            return self.default_model
        view = self.pool_for(headers)
        served = {m for e in view.endpoints if e.ready for m in e.metrics.served_models}
        if len(served) == 1:
            return served.pop()
        if not served and len(view.models) == 1:
            return next(iter(view.models))
        raise GatewayError(
            400,
            f"request body has no 'model' field and pool {view.pool.ref} serves {len(served)} models",
            "missing_model",
        )

    def _find_pool(self, model: str, pool_name: str | None) -> tuple[PoolView, InferenceModel | None]:
        views = self._views(pool_name)
        for view in views:
            if model in view.models:
                return view, view.models[model]
        for view in views:
            if _rewrite_for(view, model) is not None or _served_by(view, model):
                return view, None
        if len(views) == 1 and not self.strict_models:
            # As upstream: a name nothing declares (an adapter loaded at runtime, a base model
            # alias) goes to the pool with the default priority; the model server decides.
            return views[0], None
        if len(views) == 1 and not any(e.metrics.updated_at for e in views[0].endpoints):
            # Nothing scraped yet: let the model server decide rather than refuse.
            return views[0], None
        raise GatewayError(404, f"The model `{model}` does not exist.", "model_not_found")

    def _target(
        self,
        model: str,
        im: InferenceModel | None,
        rewrite: InferenceModelRewrite | None,
        override: str | None,
    ) -> str:
        if override:
            return override
        if im is not None and im.target_models:
            return pick_target_model(im.target_models, self.rng)
        rule = rewrite.rule_for(model) if rewrite is not None else None
        if rule is not None and rule.targets:
            return pick_rewrite_target(rule.targets, self.rng)
        return model


def _rewrite_for(view: PoolView, model: str) -> InferenceModelRewrite | None:
    """Exact matches (oldest resource first) win over rules that match every model."""
    return view.rewrites.get(model) or view.rewrites.get(MATCH_ANY_MODEL)


def _served_by(view: PoolView, model: str) -> bool:
    return any(can_serve(e, model) for e in view.endpoints)


def pick_target_model(targets: tuple[TargetModel, ...], rng: random.Random) -> str:
    """Weighted choice; targets without weights share traffic equally."""
    if len(targets) == 1:
        return targets[0].name
    weights = [t.weight if t.weight is not None else 1 for t in targets]
    return rng.choices([t.name for t in targets], weights=weights)[0]


def pick_rewrite_target(targets: tuple[RewriteTarget, ...], rng: random.Random) -> str:
    if len(targets) == 1:
        return targets[0].model_rewrite
    return rng.choices([t.model_rewrite for t in targets], weights=[t.weight for t in targets])[0]
