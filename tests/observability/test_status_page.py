"""The EPP's live status page, loaded in a real headless Chromium: it renders the live pods with
their scraped state, the recent decisions with their scores, and the recent errors."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import orjson
import pytest

from inference_gateway.local.stack import LocalStack
from tests.faults.conftest import small_stack

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Tables(HTMLParser):
    """Rows of every table with an id: {table id: [[cell text, ...], ...]}, plus row attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.row_attrs: dict[str, list[dict[str, str | None]]] = {}
        self.body_attrs: dict[str, str | None] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.body_attrs = dict(attrs)
        elif tag == "table":
            self._table = dict(attrs).get("id")
            self.tables.setdefault(self._table or "", [])
            self.row_attrs.setdefault(self._table or "", [])
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
            self.row_attrs[self._table].append(dict(attrs))
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


async def render(url: str) -> Tables:
    """The DOM after the page's scripts ran, as headless Chromium dumps it."""
    assert CHROMIUM is not None
    profile = tempfile.mkdtemp(prefix="ig-chromium-")
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
        f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", url,
    ]  # fmt: skip
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 90)
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    tables = Tables()
    tables.feed(out.decode())
    return tables


async def test_status_page_renders_live_pods_decisions_and_errors(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (`make test` installs it: apt-get install chromium)")
    stack: LocalStack = await small_stack(tmp_path)
    try:
        assert stack.epp is not None
        async with aiohttp.ClientSession() as s:
            body = {"model": "food-review", "prompt": "hello", "max_tokens": 2}
            async with s.post(f"{stack.base_url}/completions", json=body) as r:
                assert r.status == 200
                routed_id = r.headers["x-request-id"]
            bad = b'{"model": '
            headers = {"content-type": "application/json"}
            async with s.post(f"{stack.base_url}/completions", data=bad, headers=headers) as r:
                assert r.status == 400
                failed_id = r.headers["x-request-id"]
            async with s.get(f"{stack.status_url}status.json") as r:
                snapshot = orjson.loads(await r.read())
        assert {e["address"] for p in snapshot["pools"] for e in p["endpoints"]} == {
            a for p in stack.pods for a in p.addresses
        }

        page = await render(stack.status_url)
        assert page.body_attrs.get("data-rendered"), "the page's script did not render"
        rendered = {attrs.get("data-address") for attrs in page.row_attrs["pods"]} - {None}
        assert rendered == {a for p in stack.pods for a in p.addresses}
        pod_rows = [row for row in page.tables["pods"][1:] if len(row) > 3]
        assert all(row[3] == "yes" and row[8].endswith("s ago") for row in pod_rows), pod_rows
        decisions = {row[1]: row for row in page.tables["decisions"][1:] if len(row) > 1}
        assert routed_id in decisions and "food-review →" in decisions[routed_id][2]
        assert ":" in decisions[routed_id][4]  # address: total score
        errors = {row[1]: row for row in page.tables["errors"][1:] if len(row) > 1}
        assert failed_id in errors and errors[failed_id][2] == "400"
    finally:
        await stack.stop()
