"""A real HTTP server on 127.0.0.1 (ephemeral port) serving feed files with behaviours.

Routes map a path to a Route: a file (or bytes) and how to answer: ETag/Last-Modified with
304 on a matching conditional GET, a fixed status (429 or 503 with a Retry-After, 410 Gone)
and extra headers (Cache-Control), a delay, a redirect (302, or permanent: 301 / 308), gzip.
Every request is logged, so tests can assert what the client sent (conditional headers,
User-Agent) and how often each path was asked (`count`).
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
LAST_MODIFIED = "Wed, 21 Aug 2024 10:00:00 GMT"


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    delay: float = 0.0
    conditional: bool = False  # send ETag/Last-Modified and honour If-None-Match/-Modified-Since
    redirect: str | None = None
    redirect_status: int = 302  # 301 and 308 are permanent, 302 and 307 temporary
    gzip: bool = False
    last_modified: str = LAST_MODIFIED  # sent when conditional; If-Modified-Since compared to it
    extra_headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def file(cls, name: str, **kwargs: object) -> Route:
        return cls(body=(FIXTURES / name).read_bytes(), **kwargs)  # type: ignore[arg-type]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    status: int


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up mid-request (the timeout tests do): nothing to report


def _not_modified_since(asked: str | None, last_modified: str) -> bool:
    """If-Modified-Since as servers answer it: 304 when the copy asked about is not older."""
    if not asked:
        return False
    try:
        return parsedate_to_datetime(asked) >= parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False


class FeedServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                # Logged before answering, so the log is complete once the client has its answer.
                request = Request(self.path, dict(self.headers.items()), 0)
                server.requests.append(request)
                server._answer(self, request)

        # Any address of the loopback range (127.0.0.2 is a second "host" on the same machine).
        self._httpd = _QuietServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def count(self, path: str) -> int:
        """How many times `path` was asked."""
        return len(self.requests_to(path))

    def _answer(self, handler: BaseHTTPRequestHandler, request: Request) -> None:
        route = self.routes.get(handler.path)
        if route is None:
            return self._send(handler, request, 404, b"not found", "text/plain", {})
        if route.delay:
            time.sleep(route.delay)
        if route.redirect:
            return self._send(
                handler,
                request,
                route.redirect_status,
                b"",
                "text/plain",
                {"Location": route.redirect, **route.extra_headers},
            )
        headers = dict(route.extra_headers)
        if route.conditional and route.status == 200:
            etag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
            headers["ETag"] = etag
            headers["Last-Modified"] = route.last_modified
            if handler.headers.get("If-None-Match") == etag or _not_modified_since(
                handler.headers.get("If-Modified-Since"), route.last_modified
            ):
                return self._send(handler, request, 304, b"", None, headers)
        body = route.body
        if route.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return self._send(handler, request, route.status, body, route.content_type, headers)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        request: Request,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: dict[str, str],
    ) -> None:
        request.status = status  # before the answer leaves, so the client never sees it first
        try:
            handler.send_response(status)
            if content_type:
                handler.send_header("Content-Type", content_type)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if body:
                handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer
