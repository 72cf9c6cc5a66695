"""Human-readable scheduling decisions: per-candidate scores and why the winner won.

Only built when a request asks for it (x-gateway-explain: true) or debug logging is on, so
none of this runs on the normal hot path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inference_gateway.scheduling.types import ProfileResult


def explain_profile(result: ProfileResult, limit: int = 10) -> dict[str, Any]:
    n = len(result.candidates)
    order = sorted(range(n), key=lambda i: -result.totals[i])
    shown = order[:limit]
    if result.picked and result.picked[0] in result.candidates:
        win = result.candidates.index(result.picked[0])
        if win not in shown:
            shown.append(win)
    return {
        "profile": result.profile,
        "picked": [e.address for e in result.picked],
        "reason": reason(result),
        "weights": {b.scorer: b.weight for b in result.breakdown},
        "filtered_out": result.filtered_out,
        "candidates_total": n,
        "candidates": [_candidate(result, i) for i in shown],
    }


def _candidate(result: ProfileResult, i: int) -> dict[str, Any]:
    ep = result.candidates[i]
    return {
        "endpoint": ep.name,
        "address": ep.address,
        "total": round(result.totals[i], 4),
        "scores": {b.scorer: round(b.scores[i], 4) for b in result.breakdown},
        "metrics": {
            "waiting": ep.metrics.waiting_queue,
            "running": ep.metrics.running_requests,
            "kv": round(ep.metrics.kv_cache_usage, 4),
        },
    }


def reason(result: ProfileResult) -> str:
    """One sentence on why the first picked endpoint won."""
    if not result.picked:
        dropped = ", ".join(f"{f} removed {len(eps)}" for f, eps in result.filtered_out.items())
        return "no endpoint survived the filters" + (f" ({dropped})" if dropped else "")
    n = len(result.candidates)
    winner = result.picked[0]
    if n == 1:
        return f"{winner.name} was the only candidate left after filtering"
    w = result.candidates.index(winner)
    totals = result.totals
    best = max(totals)
    if totals[w] < best:
        top = result.candidates[totals.index(best)]
        return (
            f"{result.picker or 'the picker'} chose {winner.name} (total {totals[w]:.3f}) at random "
            f"weighted by score; the highest total was {top.name} ({best:.3f})"
        )
    ties = sum(1 for t in totals if t == best)
    if ties > 1:
        return f"{ties} endpoints tied at the top total {best:.3f}; {winner.name} was picked at random"
    runner = max((i for i in range(n) if i != w), key=lambda i: totals[i])
    return (
        f"{winner.name} had the highest total {totals[w]:.3f} vs runner-up "
        f"{result.candidates[runner].name} {totals[runner]:.3f}; {_lead(result, w, runner)}"
    )


def _lead(result: ProfileResult, w: int, r: int) -> str:
    gains = sorted(
        ((b.weight * (b.scores[w] - b.scores[r]), b.scorer) for b in result.breakdown),
        reverse=True,
    )
    ahead = [f"{name} +{gain:.3f}" for gain, name in gains if gain > 0][:3]
    behind = [f"{name} {gain:.3f}" for gain, name in reversed(gains) if gain < 0][:2]
    text = "lead came from " + ", ".join(ahead) if ahead else "no single scorer made the difference"
    return text + (f" (despite {', '.join(behind)})" if behind else "")
