"""A client that classifies every request's outcome, so fault tests can account for all of them.

Each request ends in exactly one bucket:
- ok: 200 and a complete body (JSON with choices, or an SSE stream ending in `data: [DONE]`);
- error: a non-200 status with an OpenAI-style JSON error body;
- truncated: a 200 stream that ended early with a transport error (the pod died mid-stream);
- disconnected: the connection closed before any response (e.g. Envoy's codec errors);
- broken: anything else (a 200 with a malformed body, a non-JSON error) — never acceptable;
- hung: no outcome within the guard timeout — never acceptable.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import orjson

from inference_gateway.local.stack import LocalStack

Kind = Literal["ok", "error", "truncated", "disconnected", "broken", "hung"]
SERVED = "x-gateway-destination-endpoint-served"
MODEL = "meta-llama/Llama-2-7b-hf"
GUARD_S = 30.0  # far above any outcome the tests expect; only a real hang reaches it

_prompts = itertools.count()


@dataclass
class Outcome:
    kind: Kind
    status: int = 0
    served: str | None = None
    error: dict[str, Any] | None = None
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    @property
    def counts(self) -> Counter[str]:
        return Counter(o.kind for o in self.outcomes)

    def of(self, kind: Kind) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == kind]

    def assert_accounted(self, sent: int, allowed: set[Kind]) -> None:
        """Every request sent has exactly one outcome, and each outcome is an allowed one."""
        counts = self.counts
        assert sum(counts.values()) == sent, counts
        unexpected = {k: v for k, v in counts.items() if k not in allowed}
        samples = [o for o in self.outcomes if o.kind not in allowed][:3]
        assert not unexpected, (unexpected, samples)


def completion_body(stream: bool = False, max_tokens: int = 8, **extra: Any) -> dict[str, Any]:
    # A distinct prompt per request keeps prefix-cache affinity from steering the picks.
    body = {"model": MODEL, "prompt": f"request {next(_prompts)}", "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
    return body | extra


def _json_error(raw: bytes) -> dict[str, Any] | None:
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    err = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(err, dict) and isinstance(err.get("message"), str) and err.get("type"):
        return err
    return None


async def _read(resp: aiohttp.ClientResponse, stream: bool) -> Outcome:
    served = resp.headers.get(SERVED)
    if resp.status != 200:
        err = _json_error(await resp.read())
        kind: Kind = "error" if err is not None else "broken"
        return Outcome(kind, resp.status, served, err)
    try:
        raw = await resp.read()
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        return Outcome("truncated", 200, served, detail=repr(exc))
    if stream:
        done = raw.rstrip().endswith(b"data: [DONE]")
        return Outcome("ok" if done else "broken", 200, served, detail=raw[-200:].decode(errors="replace"))
    try:
        ok = bool(orjson.loads(raw)["choices"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        ok = False
    return Outcome("ok" if ok else "broken", 200, served, detail=raw[:200].decode(errors="replace"))


async def send(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any] | bytes,
    headers: dict[str, str] | None = None,
    guard_s: float = GUARD_S,
) -> Outcome:
    stream = isinstance(body, dict) and bool(body.get("stream"))
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    started = time.monotonic()

    async def attempt() -> Outcome:
        try:
            hdrs = {"content-type": "application/json", **(headers or {})}
            async with session.post(url, data=data, headers=hdrs) as resp:
                return await _read(resp, stream)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            return Outcome("disconnected", detail=repr(exc))

    try:
        outcome = await asyncio.wait_for(attempt(), guard_s)
    except TimeoutError:
        outcome = Outcome("hung")
    outcome.seconds = time.monotonic() - started
    return outcome


def session() -> aiohttp.ClientSession:
    # No client-side timeout: the guard in `send` is the only bound, so a hang shows as "hung".
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))


async def send_many(stack: LocalStack, bodies: list[dict[str, Any]], concurrency: int = 8) -> Tally:
    tally = Tally()
    gate = asyncio.Semaphore(concurrency)
    url = f"{stack.base_url}/completions"
    async with session() as s:

        async def one(body: dict[str, Any]) -> None:
            async with gate:
                tally.add(await send(s, url, body))

        await asyncio.gather(*(one(b) for b in bodies))
    return tally


async def set_faults(address: str, *faults: str) -> list[str]:
    """Replace a simulated pod's faults at runtime (POST /admin/faults)."""
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"http://{address}/admin/faults", json={"faults": list(faults)}) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["faults"])


async def prefer(stack: LocalStack, address: str) -> None:
    """Freeze the EPP's metrics so that `address` looks like the best pod (idle, empty cache)."""
    epp = stack.epp
    assert epp is not None
    await epp.scraper.stop()
    for e in epp.store.endpoints():
        best = e.address == address
        e.metrics.waiting_queue = 0 if best else 5
        e.metrics.kv_cache_usage = 0.0 if best else 0.9
        e.metrics_ok = True


def in_flight(stack: LocalStack) -> int:
    """Requests the EPP still counts as running; 0 once every stream has been closed."""
    assert stack.epp is not None
    return sum(e.in_flight for e in stack.epp.store.endpoints())


async def eventually(check: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll `check` until it holds; fail after `timeout_s` (generous: the suite runs under -n 2)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout_s}s waiting for {what}"
        await asyncio.sleep(0.05)


async def settle(stack: LocalStack, timeout_s: float = 10.0) -> None:
    """Wait until the EPP has seen every ext_proc stream close (the stream end is asynchronous)."""
    await eventually(lambda: in_flight(stack) == 0, timeout_s, "the EPP to count no request in flight")
