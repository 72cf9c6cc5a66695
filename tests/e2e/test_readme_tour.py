"""The README's five-minute tour, pasted into a fresh shell (no virtualenv activated, a bare
PATH) in the repository folder, against a running `up` stack (its port swapped in for 8081)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from inference_gateway.local.stack import LocalStack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def tour_block() -> str:
    text = (ROOT / "README.md").read_text()
    tour = text[text.index("## A five-minute tour") : text.index("## Architecture")]
    return re.findall(r"```bash\n(.*?)```", tour, re.S)[0]


async def test_readme_tour_runs_in_a_fresh_shell(stack: LocalStack, tmp_path: Path) -> None:
    script = tour_block().replace("127.0.0.1:8081", f"127.0.0.1:{stack.gateway_port}")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    if not (ROOT / ".venv" / "bin" / "inference-gateway").exists():
        pytest.skip("the tour uses .venv/bin/ (make creates it)")
    # The stack runs in this event loop: the shell must not block it.
    proc = await asyncio.create_subprocess_exec(
        "bash", "-e", "-o", "pipefail", "-c", script, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    raw, _ = await asyncio.wait_for(proc.communicate(), 100)
    out = raw.decode()
    assert proc.returncode == 0, out
    first, _ = json.JSONDecoder().raw_decode(out)  # curl prints no newline after it
    assert first["choices"][0]["text"]
    assert "x-gateway-destination-endpoint-served" in out.lower()  # the explain step's grep
    assert '"error"' in out and "does not exist" in out
    assert re.search(r"ok: \d+ models", out)  # validate
