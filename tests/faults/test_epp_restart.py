"""Restarting the EPP under load: requests already routed carry on (the EPP detaches from their
ext_proc streams), requests arriving while it is down get the pool's failure mode (FailClose:
a fast 503 JSON error; FailOpen: Envoy's own balancing), and nothing hangs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.faults.client import Outcome, Tally, completion_body, send, session, settle
from tests.faults.conftest import small_stack

pytestmark = pytest.mark.e2e

WORKERS = 6


@pytest.mark.parametrize("mode", ["FailClose", "FailOpen"])
async def test_epp_restart_under_load(tmp_path: Path, mode: str) -> None:
    stack = await small_stack(tmp_path, failure_mode=mode)
    url = f"{stack.base_url}/completions"
    tally, stop = Tally(), asyncio.Event()
    sent_at: list[tuple[float, Outcome]] = []
    try:
        async with session() as s:

            async def worker(i: int) -> None:
                n = 0
                while not stop.is_set():
                    started = time.monotonic()
                    outcome = await send(s, url, completion_body(stream=(i + n) % 2 == 0))
                    tally.add(outcome)
                    sent_at.append((started, outcome))
                    n += 1

            # Long generations that are mid-response when the EPP goes away.
            long_ones = [
                asyncio.create_task(send(s, url, completion_body(stream=stream, max_tokens=3000)))
                for stream in (True, False)
            ]
            workers = [asyncio.create_task(worker(i)) for i in range(WORKERS)]
            await asyncio.sleep(0.5)
            await stack.restart_epp(downtime_s=0.5, grace_s=5.0)
            back = time.monotonic()
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*workers)
            survivors = await asyncio.gather(*long_ones)

        assert [o.kind for o in survivors] == ["ok", "ok"], survivors
        sent = len(tally.outcomes)
        if mode == "FailClose":
            tally.assert_accounted(sent, {"ok", "error"})
            errors = tally.of("error")
            assert errors, "no request arrived while the EPP was down"
            for o in errors:
                assert o.status == 503 and o.error is not None
                assert "endpoint picker is unavailable" in o.error["message"]
        else:
            tally.assert_accounted(sent, {"ok"})
        # Envoy reconnects to the new EPP at once: what was sent after the restart succeeded.
        after = [o for t, o in sent_at if t > back + 0.1]
        assert after and all(o.kind == "ok" for o in after), [o for o in after if o.kind != "ok"][:3]
        await settle(stack)
    finally:
        await stack.stop()
