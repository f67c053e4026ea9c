"""The fetch step against hostile servers: every misbehaviour ends as one feed's error value.

Each test fetches a hostile feed together with a good feed in one `fetch_feeds` call and
checks that the hostile feed fails with a message a user can act on, that the good feed is
unharmed, and that the call ends within the deadline. Servers that break HTTP itself (drip,
silence, short bodies, odd status lines) are tiny raw-socket servers on 127.0.0.1; the rest
use the ordinary test feed server. No traffic leaves 127.0.0.1.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import tracemalloc
import unicodedata
import zlib
from collections.abc import Callable, Iterator

import pytest

import tensionwatch.fetch as fetch_module
from tensionwatch.config import Feed, FetchSettings
from tensionwatch.fetch import FAILED, OK, FetchResult, fetch_feeds
from tests.feedserver import FeedServer, Route

GOOD = "/good.xml"
CAP = 1_000_000  # max_body_bytes in the tests that need a cap
FAST = FetchSettings(
    timeout_seconds=1,
    deadline_seconds=2.5,
    retries=0,
    retry_backoff_seconds=0.05,
    max_redirects=3,
    max_body_bytes=CAP,
    user_agent="tensionwatch-test/1",
)
SLACK = 3.0  # seconds allowed past the deadline: only to show that nothing hangs

Handler = Callable[[socket.socket, threading.Event], None]


# --- a raw-socket server for answers that the ordinary HTTP server cannot give ----------------


class RawServer:
    """Accepts connections on 127.0.0.1 (ephemeral port); `handler` answers each one.

    Every thread is a daemon, every socket has a timeout, and `stop` closes all sockets and
    joins every thread, so nothing outlives the test.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.connections: list[socket.socket] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def url(self, path: str = "/feed.xml") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            conn.settimeout(0.5)
            self.connections.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if read_request(conn, self.stopping):
                self.handler(conn, self.stopping)
        except OSError:
            pass  # the client went away (it gave up, as it should)
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopping.set()
        self._accepter.join(5)
        self.listener.close()
        for thread in self.threads:
            thread.join(5)
        for conn in self.connections:
            conn.close()
        assert not self._accepter.is_alive()
        assert not any(thread.is_alive() for thread in self.threads)


def read_request(conn: socket.socket, stopping: threading.Event) -> bool:
    """Read one request head; False if the client left or the test is over first."""
    data = b""
    while b"\r\n\r\n" not in data:
        if stopping.is_set():
            return False
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            return False
        data += chunk
    return True


def idle(stopping: threading.Event, seconds: float = 30.0) -> None:
    stopping.wait(seconds)


@pytest.fixture
def raw_server() -> Iterator[Callable[[Handler], RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Handler) -> RawServer:
        server = RawServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def good_server(feed_server: FeedServer) -> FeedServer:
    feed_server.routes[GOOD] = Route.file("world_rss20.xml")
    return feed_server


@pytest.fixture(scope="module")
def zeros_50mb() -> bytes:
    return bytes(50_000_000)


# --- helpers ------------------------------------------------------------------------------------


def fetch_with_good(
    hostile_url: str, good: FeedServer, settings: FetchSettings = FAST
) -> tuple[FetchResult, FetchResult, float]:
    """Fetch the hostile feed and a good one in one call; both results and the elapsed time."""
    feeds = [Feed(name="hostile", url=hostile_url), Feed(name="good", url=good.url(GOOD))]
    started = time.monotonic()
    hostile, fine = fetch_feeds(feeds, {}, settings)
    elapsed = time.monotonic() - started
    assert elapsed < settings.deadline_seconds + SLACK, f"took {elapsed:.1f} s"
    assert fine.outcome == OK and fine.error is None
    assert fine.body and fine.body.startswith(b"<?xml")
    assert hostile.outcome == FAILED and hostile.body is None
    assert_readable(hostile.error)
    return hostile, fine, elapsed


def assert_readable(error: str | None) -> None:
    """An error text safe to print: no control characters, not a wall of text."""
    assert error, "a failed feed must say why"
    bad = [c for c in error if unicodedata.category(c) == "Cc"]
    assert not bad, f"control characters in {error!r}"
    assert len(error) <= 300, f"{len(error)} characters"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the cases ----------------------------------------------------------------------------------


def test_a_body_dripping_in_forever_fails_at_the_deadline(raw_server, good_server):
    def drip(conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n")
        conn.sendall(b"Content-Length: 100000\r\n\r\n<rss>")
        # A byte well inside the read timeout, so only the total deadline can end it.
        while not stopping.wait(0.2):
            conn.sendall(b" ")

    server = raw_server(drip)
    hostile, _, elapsed = fetch_with_good(server.url(), good_server)
    assert hostile.error == "no complete answer within 2.5 s"
    assert elapsed >= FAST.deadline_seconds - 0.5


def test_a_server_that_never_sends_headers_times_out(raw_server, good_server):
    server = raw_server(lambda conn, stopping: idle(stopping))
    settings = FAST.model_copy(update={"retries": 1, "deadline_seconds": 4})
    hostile, _, _ = fetch_with_good(server.url(), good_server, settings)
    assert hostile.error.startswith("timed out")
    assert hostile.attempts == 2


def test_a_connection_closed_mid_body_is_reported_as_broken(raw_server, good_server):
    def short(conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<rss>" + b"x" * 95)

    server = raw_server(short)
    hostile, _, _ = fetch_with_good(server.url(), good_server)
    assert hostile.error.startswith("connection broke")
    assert "received 100 bytes, expected 1000" in hostile.error


def test_a_redirect_loop_stops_after_max_redirects(good_server):
    good_server.routes["/a"] = Route(redirect="/b")
    good_server.routes["/b"] = Route(redirect="/a")
    hostile, _, _ = fetch_with_good(good_server.url("/a"), good_server)
    assert hostile.error == "more than 3 redirects"
    assert len(good_server.requests_to("/a")) + len(good_server.requests_to("/b")) == 4


def test_a_chain_of_redirects_on_one_host_stops_after_max_redirects(good_server):
    for n in range(10):
        good_server.routes[f"/hop{n}"] = Route(redirect=f"/hop{n + 1}")
    hostile, _, _ = fetch_with_good(good_server.url("/hop0"), good_server)
    assert hostile.error == "more than 3 redirects"
    assert not good_server.requests_to("/hop4")


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "file://localhost/etc/passwd", "ftp://127.0.0.1/feed.xml"]
)
def test_a_redirect_away_from_http_is_refused(good_server, location):
    good_server.routes["/moved"] = Route(redirect=location)
    hostile, fine, _ = fetch_with_good(good_server.url("/moved"), good_server)
    scheme = location.split(":")[0]
    assert hostile.error == f"refused to follow a redirect to {scheme}:// (only http and https)"
    assert "root:" not in hostile.error
    assert b"root:" not in fine.body
    assert hostile.bytes_read == 0


def test_a_redirect_to_a_malformed_address_is_a_clear_error(good_server):
    good_server.routes["/moved"] = Route(redirect="http://[::1")
    settings = FAST.model_copy(update={"retries": 2})
    hostile, _, _ = fetch_with_good(good_server.url("/moved"), good_server, settings)
    assert hostile.error == "redirect to an invalid address (Invalid port: ':1')"
    assert hostile.attempts == 1  # the server will say the same again: not worth a retry


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress)],
    ids=["gzip", "deflate"],
)
def test_a_compression_bomb_stops_at_the_cap_without_filling_memory(
    good_server, zeros_50mb, encoding, compress
):
    bomb = compress(zeros_50mb)
    assert len(bomb) < 100_000
    good_server.routes["/bomb"] = Route(body=bomb, extra_headers={"Content-Encoding": encoding})
    tracemalloc.start()
    try:
        hostile, _, _ = fetch_with_good(good_server.url("/bomb"), good_server)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert hostile.error == f"body is over the {CAP}-byte cap"
    assert peak < 3 * CAP + 8_000_000, f"peak {peak / 1e6:.1f} MB while reading the body"


def test_a_raw_deflate_body_is_still_decoded(good_server):
    # Some servers send deflate without the zlib wrapper; both forms are decoded.
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = packer.compress(b"<?xml version='1.0'?><rss/>") + packer.flush()
    good_server.routes["/raw"] = Route(body=body, extra_headers={"Content-Encoding": "deflate"})
    good_server.routes["/gz"] = Route(body=b"<?xml version='1.0'?><rss/>", gzip=True)
    raw, gz = fetch_feeds(
        [
            Feed(name="raw", url=good_server.url("/raw")),
            Feed(name="gz", url=good_server.url("/gz")),
        ],
        {},
        FAST,
    )
    assert raw.outcome == OK and raw.body == b"<?xml version='1.0'?><rss/>"
    assert gz.outcome == OK and gz.body == b"<?xml version='1.0'?><rss/>"


def test_a_declared_body_over_the_cap_is_refused_before_reading(good_server):
    good_server.routes["/big"] = Route(body=b"x" * (CAP + 1))
    hostile, _, _ = fetch_with_good(good_server.url("/big"), good_server)
    assert hostile.error == f"body of {CAP + 1} bytes is over the {CAP}-byte cap"


def test_a_chunked_body_over_the_cap_is_cut_off_while_streaming(raw_server, good_server):
    def endless_chunks(conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(100):  # 6.5 MB unless the client hangs up first
            if stopping.is_set():
                return
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.sendall(b"0\r\n\r\n")

    server = raw_server(endless_chunks)
    hostile, _, _ = fetch_with_good(server.url(), good_server)
    assert hostile.error == f"body is over the {CAP}-byte cap"


def test_a_body_that_is_not_the_declared_gzip_cannot_be_decoded(good_server):
    good_server.routes["/fake"] = Route(
        body=b"this is not gzip at all" * 10, extra_headers={"Content-Encoding": "gzip"}
    )
    hostile, _, _ = fetch_with_good(good_server.url("/fake"), good_server)
    assert hostile.error.startswith("cannot decode")
    assert "incorrect header check" in hostile.error


def test_an_empty_200_is_an_ok_value_with_an_empty_body(good_server):
    # Not a fetch error: the parse step reports an empty document for this feed.
    good_server.routes["/empty"] = Route(body=b"")
    started = time.monotonic()
    empty, fine = fetch_feeds(
        [
            Feed(name="empty", url=good_server.url("/empty")),
            Feed(name="good", url=good_server.url(GOOD)),
        ],
        {},
        FAST,
    )
    assert time.monotonic() - started < FAST.deadline_seconds + SLACK
    assert empty.outcome == OK and empty.body == b"" and empty.error is None
    assert empty.status_code == 200 and empty.bytes_read == 0
    assert fine.outcome == OK and fine.body


def test_nothing_listening_gives_every_feed_a_cannot_connect_error():
    port = closed_port()
    feeds = [Feed(name=f"f{n}", url=f"http://127.0.0.1:{port}/{n}.xml") for n in range(3)]
    settings = FAST.model_copy(update={"retries": 1})
    started = time.monotonic()
    results = fetch_feeds(feeds, {}, settings)
    # Refused at once: within one request timeout, not after retries and the deadline.
    assert time.monotonic() - started < settings.timeout_seconds
    assert [r.feed_id for r in results] == ["f0", "f1", "f2"]
    for result in results:
        assert result.outcome == FAILED and result.error.startswith("cannot connect")
        assert result.error.endswith("(after 2 attempts)")
        assert_readable(result.error)


@pytest.mark.parametrize("status", [404, 503])
def test_control_characters_in_the_status_line_never_reach_the_error(
    raw_server, good_server, status
):
    def hostile_status(conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 %d \x1b[31mEVIL\x07\x7f\x85\x9b2J\r\n" % status)
        conn.sendall(b"X-Odd: a\x1bb\xff\r\nContent-Length: 0\r\n\r\n")

    server = raw_server(hostile_status)
    hostile, _, _ = fetch_with_good(server.url(), good_server)
    assert hostile.error.startswith(f"HTTP {status} ")
    assert "[31mEVIL" in hostile.error  # the harmless rest of the text is kept


def test_an_enormous_reason_phrase_is_cut_short_in_the_error(raw_server, good_server):
    def wordy(conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 503 " + b"Busy " * 2000 + b"\r\nContent-Length: 0\r\n\r\n")

    server = raw_server(wordy)
    hostile, _, _ = fetch_with_good(server.url(), good_server)
    assert hostile.error.startswith("HTTP 503 Busy Busy")
    assert hostile.error.endswith("(after 1 attempt)")  # the cut keeps the useful end


def test_a_garbled_retry_after_still_reports_the_server_error(raw_server, good_server):
    def garbled(conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: \xb2\r\n")
        conn.sendall(b"Content-Length: 0\r\n\r\n")

    server = raw_server(garbled)
    settings = FAST.model_copy(update={"retries": 1})
    hostile, _, _ = fetch_with_good(server.url(), good_server, settings)
    assert hostile.error == "HTTP 503 Service Unavailable (after 2 attempts)"


def test_a_short_retry_after_is_waited_for_within_the_cycle(good_server):
    good_server.routes["/busy"] = Route(status=429, extra_headers={"Retry-After": "0"})
    settings = FAST.model_copy(update={"retries": 1, "deadline_seconds": 5})
    hostile, _, _ = fetch_with_good(good_server.url("/busy"), good_server, settings)
    assert hostile.error == "HTTP 429 Too Many Requests (after 2 attempts)"
    assert hostile.status_code == 429 and hostile.retry_after == 0
    assert len(good_server.requests_to("/busy")) == 2


def test_a_retry_after_longer_than_a_cycle_waits_ends_the_fetch_and_is_reported(
    good_server, monkeypatch
):
    # Within the deadline, but longer than a cycle waits: not asked again now (it used to be
    # asked again after the cap, long before the server said), and polling.py keeps the time.
    monkeypatch.setattr(fetch_module, "MAX_RETRY_AFTER_SECONDS", 0.3)
    good_server.routes["/busy"] = Route(status=503, extra_headers={"Retry-After": "2"})
    settings = FAST.model_copy(update={"retries": 1, "deadline_seconds": 5})
    hostile, _, _ = fetch_with_good(good_server.url("/busy"), good_server, settings)
    assert hostile.error == (
        "HTTP 503 Service Unavailable (after 1 attempt; not retried now: the server asked to "
        "wait 2 s)"
    )
    assert hostile.status_code == 503 and hostile.retry_after == 2
    assert len(good_server.requests_to("/busy")) == 1


def test_a_retry_after_beyond_the_deadline_gives_up_at_once_with_the_real_reason(good_server):
    good_server.routes["/busy"] = Route(status=503, extra_headers={"Retry-After": "999999"})
    settings = FAST.model_copy(update={"retries": 2})
    hostile, _, elapsed = fetch_with_good(good_server.url("/busy"), good_server, settings)
    assert hostile.error == (
        "HTTP 503 Service Unavailable (after 1 attempt; not retried: the server asked to "
        "wait past the 2.5 s deadline)"
    )
    assert len(good_server.requests_to("/busy")) == 1
    assert elapsed < settings.deadline_seconds
    assert hostile.status_code == 503 and hostile.retry_after == 999999
