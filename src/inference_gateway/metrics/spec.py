"""Metric specifications: `name` or `name{label=value,...}` (PromQL instant-selector syntax).

Upstream EPP accepts the same strings in `engineConfigs` (queuedRequestsSpec, kvUsageSpec, ...),
with or without quotes around label values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inference_gateway.metrics.parse import Sample

_SPEC = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*(?:"([^"]*)"|([^",}\s]+))\s*')


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> MetricSpec:
        m = _SPEC.match(text)
        if m is None:
            raise ValueError(f"invalid metric spec {text!r}: want name or name{{label=value,...}}")
        labels: list[tuple[str, str]] = []
        body = (m.group(2) or "").strip()
        if body:
            for part in body.split(","):
                if not part.strip():
                    continue
                lm = _MATCHER.fullmatch(part)
                if lm is None:
                    raise ValueError(f"invalid label matcher {part.strip()!r} in metric spec {text!r}")
                labels.append((lm.group(1), lm.group(2) if lm.group(2) is not None else lm.group(3)))
        return cls(m.group(1), tuple(labels))

    def select(self, samples: list[Sample]) -> list[Sample]:
        if not self.labels:
            return samples
        return [s for s in samples if all(s.labels.get(k) == v for k, v in self.labels)]

    def __str__(self) -> str:
        if not self.labels:
            return self.name
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.name}{{{inner}}}"


def parse_specs(*texts: str | None) -> tuple[MetricSpec, ...]:
    """Parse optional spec strings, dropping empty ones (an empty spec disables a metric)."""
    return tuple(MetricSpec.parse(t) for t in texts if t)
