"""An online latency predictor: TTFT and TPOT per endpoint and load, learned from what the EPP
observes (no sidecar).

Two small linear models per endpoint, fitted by recursive least squares with forgetting (old
observations fade, so the model follows drift), plus one pooled model over all endpoints used
until an endpoint has `min_samples` of its own. Features are read at dispatch from the
projected endpoint state (scheduling/projection.py):

    TTFT ms ~ 1, prompt kilo-tokens, waiting', running'/64, kv'
    TPOT ms ~ 1, running'/64, kv', waiting'/64
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling import projection

TTFT_FEATURES = 5
TPOT_FEATURES = 4
MAX_PENDING = 100_000


class RecursiveLeastSquares:
    """y ~ theta . x, updated one observation at a time (forgetting factor `lam`)."""

    def __init__(self, dims: int, lam: float = 0.995, prior: float = 1000.0) -> None:
        self.lam = lam
        self.theta = [0.0] * dims
        self.p = [[prior if i == j else 0.0 for j in range(dims)] for i in range(dims)]
        self.samples = 0

    def predict(self, x: list[float]) -> float:
        return sum(t * v for t, v in zip(self.theta, x, strict=True))

    def update(self, x: list[float], y: float) -> None:
        p, lam = self.p, self.lam
        px = [sum(row[j] * x[j] for j in range(len(x))) for row in p]
        gain_den = lam + sum(a * b for a, b in zip(x, px, strict=True))
        gain = [v / gain_den for v in px]
        err = y - self.predict(x)
        self.theta = [t + g * err for t, g in zip(self.theta, gain, strict=True)]
        self.p = [[(p[i][j] - gain[i] * px[j]) / lam for j in range(len(x))] for i in range(len(x))]
        self.samples += 1


@dataclass(slots=True)
class Features:
    ttft: list[float]
    tpot: list[float]


def features(endpoint: Endpoint, prompt_tokens: int) -> Features:
    waiting = float(projection.waiting(endpoint))
    running = projection.running(endpoint) / 64.0
    kv = projection.kv_usage(endpoint)
    return Features([1.0, prompt_tokens / 1000.0, waiting, running, kv], [1.0, running, kv, waiting / 64.0])


class LatencyPredictor:
    def __init__(self, min_samples: int = 30, lam: float = 0.995) -> None:
        self.min_samples = min_samples
        self.lam = lam
        self._ttft: dict[str, RecursiveLeastSquares] = {}
        self._tpot: dict[str, RecursiveLeastSquares] = {}
        self._pooled_ttft = RecursiveLeastSquares(TTFT_FEATURES, lam)
        self._pooled_tpot = RecursiveLeastSquares(TPOT_FEATURES, lam)
        # request id -> (endpoint address, features at dispatch), until its latency is observed
        self._pending: OrderedDict[str, tuple[str, Features]] = OrderedDict()

    @property
    def warm(self) -> bool:
        """Enough observations for predictions to mean something."""
        return self._pooled_ttft.samples >= self.min_samples

    def predict(self, address: str, f: Features) -> tuple[float, float]:
        """(TTFT ms, TPOT ms), never negative."""
        ttft = self._ttft.get(address)
        tpot = self._tpot.get(address)
        if ttft is None or ttft.samples < self.min_samples:
            ttft = self._pooled_ttft
        if tpot is None or tpot.samples < self.min_samples:
            tpot = self._pooled_tpot
        return max(0.0, ttft.predict(f.ttft)), max(0.0, tpot.predict(f.tpot))

    def dispatched(self, request_id: str, address: str, f: Features) -> None:
        self._pending[request_id] = (address, f)
        if len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)

    def observed(self, request_id: str, ttft_ms: float | None, tpot_ms: float | None) -> None:
        """The request's measured TTFT and TPOT (None when not measured); forgets it."""
        entry = self._pending.pop(request_id, None)
        if entry is None:
            return
        address, f = entry
        if ttft_ms is not None:
            self._model(self._ttft, address, TTFT_FEATURES).update(f.ttft, ttft_ms)
            self._pooled_ttft.update(f.ttft, ttft_ms)
        if tpot_ms is not None:
            self._model(self._tpot, address, TPOT_FEATURES).update(f.tpot, tpot_ms)
            self._pooled_tpot.update(f.tpot, tpot_ms)

    def _model(
        self, models: dict[str, RecursiveLeastSquares], address: str, dims: int
    ) -> RecursiveLeastSquares:
        model = models.get(address)
        if model is None:
            model = models[address] = RecursiveLeastSquares(dims, self.lam)
        return model

    def forget(self, keep: set[str]) -> None:
        for models in (self._ttft, self._tpot):
            for address in [a for a in models if a not in keep]:
                del models[address]
