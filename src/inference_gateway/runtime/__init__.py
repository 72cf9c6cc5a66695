"""Per-pool decision cores (see docs/architecture.md)."""

from inference_gateway.runtime.pool import CandidateSource, Decision, PoolRuntime
from inference_gateway.runtime.pools import PoolRuntimes

__all__ = ["CandidateSource", "Decision", "PoolRuntime", "PoolRuntimes"]
