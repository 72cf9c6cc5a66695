"""HTTP load generator: OpenAI completions over aiohttp with streaming, one event loop.

Open loop: each request is sent at its scheduled time whether or not earlier ones finished
(what real traffic does); latency counts from the actual send, and the send lag behind the
schedule is recorded, so a client that cannot keep up shows instead of hiding queueing.
Closed loop: `concurrency` users each send their next request when the last one ends.
TTFT and inter-token latency come from the arrival of real SSE chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import aiohttp
import orjson

from inference_gateway.bench.workloads import BenchRequest

SERVED_HEADER = "x-gateway-destination-endpoint-served"

Gate = Callable[[], Awaitable[bool]]


@dataclass(slots=True)
class RequestRecord:
    index: int
    group: str
    scheduled: float  # intended send time, seconds from the run's start
    sent: float = 0.0  # actual send time
    status: int = 0  # HTTP status; 0 = no response (connection error, timeout)
    ttft: float = -1.0
    e2e: float = -1.0
    prompt_tokens: int = 0
    output_tokens: int = 0
    chunks: int = 0
    itl: list[float] = field(default_factory=list)
    served_by: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error

    @property
    def lag(self) -> float:
        return self.sent - self.scheduled


@dataclass
class ClientOptions:
    base_url: str
    path: str = "/completions"
    stream: bool = True
    timeout_s: float = 600.0
    max_connections: int = 0  # 0: unlimited (open loop needs a connection per in-flight request)
    keep_itl: bool = True


class LoadGenerator:
    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        self._session: aiohttp.ClientSession | None = None
        self.in_flight = 0
        self.done = 0

    async def __aenter__(self) -> LoadGenerator:
        connector = aiohttp.TCPConnector(limit=self.options.max_connections, force_close=False)
        timeout = aiohttp.ClientTimeout(total=self.options.timeout_s)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, json_serialize=lambda o: orjson.dumps(o).decode()
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def open_loop(
        self,
        schedule: Iterable[tuple[float, BenchRequest]],
        on_done: Callable[[RequestRecord], None] | None = None,
        before_send: Gate | None = None,
    ) -> list[RequestRecord]:
        """Send each (offset, request) at its offset; wait for all; records in send order.

        `before_send` may delay a send (backoff) or end the run early by returning False."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        tasks: list[asyncio.Task[RequestRecord]] = []
        for offset, request in schedule:
            delay = t0 + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if before_send is not None and not await before_send():
                break
            record = RequestRecord(request.index, request.group, offset)
            tasks.append(asyncio.create_task(self._send(request, record, t0, on_done)))
        return list(await asyncio.gather(*tasks))

    async def closed_loop(
        self,
        requests: Iterable[BenchRequest],
        concurrency: int,
        duration_s: float,
        on_done: Callable[[RequestRecord], None] | None = None,
        before_send: Gate | None = None,
    ) -> list[RequestRecord]:
        """`concurrency` users send back to back until `duration_s` or the requests run out."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        source = iter(requests)
        records: list[RequestRecord] = []

        async def user() -> None:
            while loop.time() - t0 < duration_s:
                if before_send is not None and not await before_send():
                    return
                request = next(source, None)
                if request is None:
                    return
                record = RequestRecord(request.index, request.group, loop.time() - t0)
                records.append(await self._send(request, record, t0, on_done))

        await asyncio.gather(*(user() for _ in range(concurrency)))
        return records

    async def _send(
        self,
        request: BenchRequest,
        record: RequestRecord,
        t0: float,
        on_done: Callable[[RequestRecord], None] | None,
    ) -> RequestRecord:
        assert self._session is not None
        body = orjson.dumps(request.body(self.options.stream))
        headers = {"content-type": "application/json", **request.headers}
        self.in_flight += 1
        start = time.perf_counter()
        record.sent = asyncio.get_running_loop().time() - t0
        record.prompt_tokens = request.prompt_tokens
        try:
            async with self._session.post(
                self.options.base_url + self.options.path, data=body, headers=headers
            ) as resp:
                record.status = resp.status
                record.served_by = resp.headers.get(SERVED_HEADER, "")
                if resp.status != 200:
                    record.error = (await resp.text())[:200]
                elif self.options.stream:
                    await self._read_stream(resp, record, start)
                else:
                    await self._read_json(resp, record, start)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            record.error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            self.in_flight -= 1
            self.done += 1
        if on_done is not None:
            on_done(record)
        return record

    async def _read_stream(self, resp: aiohttp.ClientResponse, record: RequestRecord, start: float) -> None:
        last = start
        usage_line = b""
        keep_itl = self.options.keep_itl
        async for line in resp.content:
            if not line.startswith(b"data:"):
                continue
            now = time.perf_counter()
            if b'"completion_tokens"' in line:
                usage_line = line
            if not _has_token(line):
                continue
            if record.chunks == 0:
                record.ttft = now - start
            elif keep_itl:
                record.itl.append(now - last)
            record.chunks += 1
            last = now
        record.e2e = time.perf_counter() - start
        record.output_tokens = _completion_tokens(usage_line) or record.chunks
        if record.chunks == 0:
            record.error = "stream ended without a token"

    async def _read_json(self, resp: aiohttp.ClientResponse, record: RequestRecord, start: float) -> None:
        payload = await resp.read()
        record.e2e = time.perf_counter() - start
        record.ttft = record.e2e
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
            usage = orjson.loads(payload).get("usage") or {}
            record.output_tokens = int(usage.get("completion_tokens", 0))


def _has_token(line: bytes) -> bool:
    """A chunk with non-empty text (completions) or content (chat); not the usage chunk."""
    for key in (b'"text":', b'"content":'):
        at = line.find(key)
        if at >= 0:
            rest = line[at + len(key) :].lstrip()
            return not (rest.startswith(b'""') or rest.startswith(b"null"))
    return False


def _completion_tokens(line: bytes) -> int:
    if not line:
        return 0
    try:
        chunk = orjson.loads(line[5:].strip())
        return int((chunk.get("usage") or {}).get("completion_tokens", 0))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 0
