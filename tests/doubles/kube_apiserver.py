"""An in-test Kubernetes API server speaking the real list/watch HTTP protocol.

The unmodified `kubernetes` client talks to it as to a cluster: lists carry
metadata.resourceVersion, `?watch=true` streams newline-delimited JSON events over chunked
HTTP (ADDED / MODIFIED / DELETED, BOOKMARK when allowWatchBookmarks=true, ERROR with a 410
Status once the history is compacted), label and field selectors filter, the status
subresource takes PUT and PATCH (merge, strategic-merge, JSON patch), and updates carrying
a stale resourceVersion get 409 Conflict, which is what leader election relies on.

Tests script the cluster through `apply` / `remove` / `compact` / `drop_watches`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import yaml

from tests.doubles.kube_store import (
    DEFAULT_RESOURCES,
    ApiError,
    Obj,
    ObjectStore,
    Resource,
    field_matcher,
    json_patch,
    label_matcher,
    merge_patch,
)


class FakeKubeAPIServer:
    """Serve `store` on 127.0.0.1:`port` (0 picks a free port) from a background thread."""

    def __init__(
        self,
        resources: tuple[Resource, ...] = DEFAULT_RESOURCES,
        bookmark_interval_s: float = 1.0,
        port: int = 0,
    ) -> None:
        self.store = ObjectStore(resources=resources)
        self.bookmark_interval_s = bookmark_interval_s
        self.requests: list[str] = []
        self.watch_generation = 0
        self.active_watches = 0
        self._httpd = _Server(("127.0.0.1", port), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.closing = False
        # RBAC in miniature: "plural" or "plural/subresource" entries answer 403 Forbidden.
        self.forbidden: set[str] = set()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="fake-kube-apiserver", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self.closing = True
        self.drop_watches()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeKubeAPIServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what tests script -------------------------------------------------
    def apply(self, obj: Obj) -> Obj:
        """Create or replace an object, status included."""
        return self.store.set(obj)

    def remove(self, api_version: str, kind: str, namespace: str, name: str) -> Obj:
        return self.store.delete(self.store.for_kind(api_version, kind), namespace, name)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj:
        return self.store.get(self.store.for_kind(api_version, kind), namespace, name)

    def compact(self) -> None:
        """Drop the event history; open and future watches from older versions get 410."""
        self.store.compact()

    def drop_watches(self) -> None:
        """Cut every open watch connection mid-stream, as a network failure would."""
        with self.store.changed:
            self.watch_generation += 1
            self.store.changed.notify_all()

    def count(self, fragment: str, method: str = "GET") -> int:
        """How many requests of `method` had `fragment` in their path and query."""
        return sum(1 for r in list(self.requests) if r.startswith(method + " ") and fragment in r)

    def configuration(self) -> Any:
        from kubernetes.client import Configuration

        config = Configuration()
        config.host = self.url
        config.connection_pool_maxsize = 64  # every open watch holds a pooled connection
        return config

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [
                {"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}
            ],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(doc))
        return path


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # every watch holds a connection; several controllers connect at once


def parse_path(path: str) -> tuple[str, str, str | None, str, str, str]:
    """-> group, version, namespace, plural, name, subresource."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
    namespace = None
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest:
        raise ApiError(404, "NotFound", f"no resource in {path}")
    rest += [""] * (3 - len(rest))
    return group, version, namespace, rest[0], rest[1], rest[2]


def _handler_class(server: FakeKubeAPIServer) -> type[BaseHTTPRequestHandler]:
    store = server.store

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            server.requests.append(f"{method} {self.path}")
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            body = self._body()
            try:
                if url.path == "/version":
                    self._reply(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake"})
                    return
                group, version, ns, plural, name, sub = parse_path(url.path)
                if plural in server.forbidden or f"{plural}/{sub}" in server.forbidden:
                    raise ApiError(403, "Forbidden", f"{method} {plural} is forbidden (RBAC)")
                res = store.find(group, version, plural)
                ns = ns if res.namespaced else ""
                if method == "GET" and not name and query.get("watch") in ("true", "1"):
                    self._watch(res, ns, query)
                    return
                self._reply(*self._dispatch(method, res, ns, name, sub, query, body))
            except ApiError as err:
                self._reply(err.code, err.status())
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _dispatch(
            self,
            method: str,
            res: Resource,
            ns: str | None,
            name: str,
            sub: str,
            query: dict[str, str],
            body: Any,
        ) -> tuple[int, Obj]:
            if method == "GET" and not name:
                match = _matcher(query)
                items, rv = store.list(res, ns, match)
                meta = {"resourceVersion": str(rv)}
                return 200, {
                    "kind": f"{res.kind}List",
                    "apiVersion": res.api_version,
                    "metadata": meta,
                    "items": items,
                }
            namespace = ns or ""
            if method == "POST" and not name:
                return 201, store.create(res, namespace, body)
            if method == "GET":
                return 200, store.get(res, namespace, name)
            if method == "PUT":
                body.setdefault("metadata", {})["name"] = name
                return 200, store.update(res, namespace, body, sub)
            if method == "PATCH":
                kind = self.headers.get("Content-Type", "")
                if kind.startswith("application/json-patch"):
                    return 200, store.patch(res, namespace, name, lambda cur: json_patch(cur, body), sub)
                return 200, store.patch(res, namespace, name, lambda cur: merge_patch(cur, body), sub)
            if method == "DELETE":
                return 200, store.delete(res, namespace, name)
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            if not length:
                return None
            raw = self.rfile.read(length)
            return orjson.loads(raw) if raw.strip() else None

        def _reply(self, code: int, payload: Obj) -> None:
            data = orjson.dumps(payload)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        # --- watch ----------------------------------------------------------
        def _watch(self, res: Resource, ns: str | None, query: dict[str, str]) -> None:
            match = _matcher(query)
            bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
            deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
            start = query.get("resourceVersion", "")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            server.active_watches += 1
            try:
                self._stream(res, ns, match, start, bookmarks, deadline)
            except (BrokenPipeError, ConnectionResetError, OSError):
                self.close_connection = True
            finally:
                server.active_watches -= 1

        def _stream(
            self, res: Resource, ns: str | None, match: Any, start: str, bookmarks: bool, deadline: float
        ) -> None:
            generation = server.watch_generation
            if start in ("", "0"):
                items, last = store.list(res, ns, match)
                for item in items:
                    self._event("ADDED", item)
            else:
                last = int(start)
            next_bookmark = time.monotonic() + server.bookmark_interval_s
            while True:
                with store.changed:
                    if server.watch_generation != generation:
                        self._cut()
                        return
                    try:
                        events = [
                            (e, e.seen_as(match))
                            for e in store.events_after(last)
                            if _in_scope(e.resource, res, e.obj, ns)
                        ]
                    except ApiError as err:
                        self._event("ERROR", err.status())
                        self._end()
                        return
                    head = store.rv
                    wait_s = min(next_bookmark, deadline) - time.monotonic()
                    if not events and wait_s > 0:
                        store.changed.wait(wait_s)
                        continue
                for event, seen in events:
                    if seen is not None:
                        self._event(seen, store._as_version(res, dict(event.obj)))
                last = head
                now = time.monotonic()
                if bookmarks and now >= next_bookmark:
                    meta = {"resourceVersion": str(last)}
                    self._event(
                        "BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
                    )
                if now >= next_bookmark:
                    next_bookmark = now + server.bookmark_interval_s
                if now >= deadline:
                    self._end()
                    return

        def _event(self, kind: str, obj: Obj) -> None:
            line = orjson.dumps({"type": kind, "object": obj}) + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()

        def _end(self) -> None:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _cut(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler


def _matcher(query: dict[str, str]) -> Any:
    labels = label_matcher(query.get("labelSelector"))
    fields = field_matcher(query.get("fieldSelector"))
    return lambda obj: labels(obj) and fields(obj)


def _in_scope(event_res: Resource, res: Resource, obj: Obj, ns: str | None) -> bool:
    if (event_res.group, event_res.plural) != (res.group, res.plural):
        return False
    return ns is None or obj.get("metadata", {}).get("namespace", "") == ns
