"""Helpers for simulator tests: run requests through one engine in virtual time."""

from __future__ import annotations

from dataclasses import replace

from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet import Fleet
from inference_gateway.simulator.fleet_types import RequestResult, SimRequest
from inference_gateway.simulator.schedulers import RoundRobinScheduler
from inference_gateway.simulator.tokenizer import output_text


def words(n_tokens: int, seed: int) -> str:
    """Text that the simulator's tokenizer turns into exactly n_tokens tokens."""
    return output_text(seed, 0, n_tokens)


def run_one_server(
    requests: list[SimRequest], config: ServerConfig | None = None
) -> tuple[dict[object, RequestResult], Fleet]:
    fleet = Fleet([config or ServerConfig()], RoundRobinScheduler())
    result = fleet.run(sorted(requests, key=lambda r: r.arrival))
    return {r.request_id: r for r in result.results}, fleet


def text_request(rid: object, arrival: float, text: str, out: int, **kw: object) -> SimRequest:
    """A request whose prompt is tokenized and hashed like the HTTP server does."""
    return replace(SimRequest(str(rid), arrival, 0, out, prompt=text), **kw)  # type: ignore[arg-type]
