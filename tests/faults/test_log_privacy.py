"""At INFO level, neither the EPP nor Envoy logs request content: prompts and messages never
appear in a log line, whether the request succeeds, streams, is rejected or is malformed."""

from __future__ import annotations

import logging
import secrets
import shutil
from pathlib import Path

import orjson
import pytest

from tests.faults.client import MODEL, send, session, settle
from tests.faults.conftest import small_stack

pytestmark = pytest.mark.e2e


async def test_prompts_never_reach_info_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    marker = f"SECRET-PROMPT-{secrets.token_hex(8)}"
    stack = await small_stack(tmp_path, envoy_log_level="info", keep_workdir=True)
    try:
        url = f"{stack.base_url}/completions"
        chat_url = f"{stack.base_url}/chat/completions"
        chat = {"model": MODEL, "messages": [{"role": "user", "content": marker}], "max_tokens": 3}
        cases: list[tuple[str, bytes | dict, dict[str, str]]] = [
            (url, {"model": MODEL, "prompt": marker, "max_tokens": 3}, {}),
            (url, {"model": MODEL, "prompt": marker, "max_tokens": 3, "stream": True}, {}),
            (url, {"model": MODEL, "prompt": marker, "max_tokens": 3}, {"x-gateway-explain": "true"}),
            (chat_url, chat, {}),
            (chat_url, chat | {"stream": True}, {}),
            (url, {"model": "no-such-model", "prompt": marker}, {}),  # 404
            (url, {"model": 7, "prompt": marker}, {}),  # 400: model not a string
            (url, b'{"model": "%s", "prompt": "%s' % (MODEL.encode(), marker.encode()), {}),  # bad JSON
            (url, orjson.dumps({"model": MODEL, "prompt": marker * 2_000_000}), {}),  # 413
        ]
        outcomes = []
        async with session() as s:
            for target, body, headers in cases:
                outcomes.append(await send(s, target, body, headers=headers))
        statuses = [o.status for o in outcomes]
        assert statuses == [200, 200, 200, 200, 200, 404, 400, 400, 413], outcomes
        await settle(stack)
    finally:
        await stack.stop()
    assert caplog.records, "nothing was logged at INFO: the check would prove nothing"
    lines = [f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records]
    leaked = [line for line in lines if marker in line]
    assert not leaked, leaked[:3]
    envoy_log = (stack.workdir / "envoy.log").read_text(errors="replace")
    shutil.rmtree(stack.workdir)
    assert envoy_log and marker not in envoy_log
