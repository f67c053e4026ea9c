"""Fetch feeds politely and concurrently; every feed's outcome comes back as a value.

Polite: one User-Agent that names us and a contact (`fetch.contact`), conditional GET (ETag /
If-Modified-Since), a global and a per-host concurrency cap, capped redirects. Which feeds are
asked at all, and when again, is polling.py's decision; this module asks the ones it is given,
at the address it is given (a feed's remembered new address), and reports what polling needs:
the HTTP status of a failure, Retry-After and Cache-Control max-age, and whether every
redirect on the way was permanent (301/308). Robust: a per-request timeout and a total
deadline per feed, a body-size cap enforced while streaming (after decompression, so a small
gzip bomb cannot blow up memory), retries with backoff for transient failures only (timeouts,
connection errors, 429 and 5xx; a Retry-After is waited for only when it is short and fits the
deadline), and no exception ever escapes for a single feed. Error texts quote what a server
sent, so control characters are replaced and their length is capped.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import unicodedata
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from tensionwatch.config import Feed, FetchSettings
from tensionwatch.polling import max_age_seconds, retry_after_seconds

OK, NOT_MODIFIED, UNCHANGED, FAILED = "ok", "not_modified", "unchanged", "error"
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
PERMANENT_REDIRECTS = frozenset({301, 308})
# The longest Retry-After waited for within a cycle; a longer one ends the feed's fetch now,
# and polling.py keeps it from being asked again before then.
MAX_RETRY_AFTER_SECONDS = 30.0
MAX_ERROR_CHARS = 300
MAX_REASON_CHARS = 100
# We decode gzip and deflate ourselves (see _Inflater) and ask for nothing else.
ACCEPT_ENCODING = "gzip, deflate"
_PIECE = 64 * 1024  # the most one decompression step may produce
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
# Response headers feedparser may use. Content-Encoding is left out because _request has already
# decoded the body (feedparser would gunzip it again), and Content-Location because a base
# address makes feedparser resolve every link in every summary: slow, and parse.py resolves
# the entry links it keeps itself.
_KEPT_HEADERS = ("content-type", "content-language", "etag", "last-modified")


@dataclass(frozen=True, slots=True)
class FeedState:
    """What we remember about a feed between cycles: validators for conditional GET, and
    when to ask it again (polling.py). Addresses as stored: secrets hidden as `${NAME}`."""

    url: str | None = None  # the configured address this state belongs to
    etag: str | None = None  # validators of the address last fetched (moved_to, if set)
    last_modified: str | None = None
    body_hash: str | None = None
    moved_to: str | None = None  # where a permanent redirect took the feed: asked from then on
    consecutive_failures: int = 0
    next_due_at: datetime | None = None  # None: due now (or retired: due_reason "gone")
    due_reason: str | None = None
    retired_at: datetime | None = None  # when it answered 410 Gone
    ttl_minutes: int | None = None  # the <ttl> of its last parsed body


@dataclass(frozen=True, slots=True)
class FetchResult:
    feed_id: str
    url: str
    started_at: datetime
    outcome: str  # ok / not_modified / unchanged / error
    final_url: str | None = None
    status_code: int | None = None
    body: bytes | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)
    bytes_read: int = 0
    duration_ms: int = 0
    attempts: int = 0
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    retry_after: float | None = None  # seconds the server asked us to wait (429 / 503)
    max_age: float | None = None  # Cache-Control max-age of the answer, seconds
    moved_to: str | None = None  # the final address, when every redirect was 301 or 308
    previous: FeedState = field(default_factory=FeedState)  # the state it was asked with


class _Transient(Exception):
    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class _Failed(Exception):
    """A permanent failure for this cycle (4xx, too large, too many redirects)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def body_hash(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _clean(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Text a server controls, safe to print: no control characters, at most `limit` chars."""
    text = "".join(
        "?" if unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI_CONTROLS else c
        for c in text
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after(response: httpx.Response) -> float | None:
    return retry_after_seconds(response.headers.get("retry-after"), datetime.now(UTC))


def _permanently_moved(response: httpx.Response) -> str | None:
    """Where the feed now lives, when every redirect on the way was permanent (301/308)."""
    history = response.history
    if history and all(r.status_code in PERMANENT_REDIRECTS for r in history):
        return str(response.url)
    return None


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    final_url: str
    body: bytes | None  # None: 304 Not Modified
    headers: dict[str, str]  # _KEPT_HEADERS, for the parser
    max_age: float | None
    moved_to: str | None


class _Inflater:
    """One gzip or deflate layer, decoded in pieces of at most _PIECE bytes.

    httpx decodes each network chunk in one go, so 64 kB of a gzip bomb became 64 MB in
    memory before the cap was checked; here no step produces more than _PIECE bytes.
    """

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.gzip = encoding in ("gzip", "x-gzip")
        self.first = not self.gzip  # deflate comes zlib-wrapped, or raw from some servers
        self.inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if self.gzip else zlib.MAX_WBITS)

    def decode(self, data: bytes) -> Iterator[bytes]:
        while True:
            try:
                out = self.inflater.decompress(data, _PIECE)
            except zlib.error as exc:
                if not self.first:
                    raise _Failed(f"cannot decode the {self.encoding} body: {exc}") from None
                self.first = False
                self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            if data:
                self.first = False
            if out:
                yield out
            data = self.inflater.unconsumed_tail
            if self.inflater.eof or (not data and len(out) < _PIECE):
                return

    def flush(self) -> Iterator[bytes]:
        yield from self.decode(b"")  # output zlib still holds back
        yield self.inflater.flush()


class _BodyDecoder:
    """Undoes the Content-Encoding layers, streaming; unknown codings pass through as httpx does."""

    def __init__(self, content_encoding: list[str]) -> None:
        codings = [value.strip().lower() for value in content_encoding]
        known = [c for c in codings if c in ("gzip", "x-gzip", "deflate")]
        self.layers = [_Inflater(coding) for coding in reversed(known)]  # the last applied first

    def decode(self, raw: bytes, layer: int = 0) -> Iterator[bytes]:
        if layer == len(self.layers):
            if raw:
                yield raw
            return
        for piece in self.layers[layer].decode(raw):
            yield from self.decode(piece, layer + 1)

    def flush(self) -> Iterator[bytes]:
        for n, inflater in enumerate(self.layers):
            for piece in inflater.flush():
                yield from self.decode(piece, n + 1)


async def _request(
    client: httpx.AsyncClient, address: str, state: FeedState, settings: FetchSettings
) -> _Answer:
    headers = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    try:
        async with client.stream("GET", address, headers=headers) as response:
            status = response.status_code
            final_url = str(response.url)
            kept = {k: response.headers[k] for k in _KEPT_HEADERS if k in response.headers}
            max_age = max_age_seconds(response.headers.get("cache-control"))
            moved_to = _permanently_moved(response)
            if status == 304:
                return _Answer(status, final_url, None, kept, max_age, moved_to)
            reason = _clean(response.reason_phrase, MAX_REASON_CHARS)
            if status in TRANSIENT_STATUS:
                raise _Transient(f"HTTP {status} {reason}", status, _retry_after(response))
            if status >= 400:
                raise _Failed(f"HTTP {status} {reason}", status)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > settings.max_body_bytes:
                raise _Failed(
                    f"body of {declared} bytes is over the {settings.max_body_bytes}-byte cap",
                    status,
                )
            decoder = _BodyDecoder(response.headers.get_list("content-encoding", split_commas=True))
            chunks, size = [], 0

            def add(pieces: Iterator[bytes]) -> None:
                nonlocal size
                for piece in pieces:
                    size += len(piece)
                    if size > settings.max_body_bytes:
                        raise _Failed(
                            f"body is over the {settings.max_body_bytes}-byte cap", status
                        )
                    chunks.append(piece)

            async for raw in response.aiter_raw():
                add(decoder.decode(raw))
            add(decoder.flush())
            return _Answer(status, final_url, b"".join(chunks), kept, max_age, moved_to)
    except httpx.TooManyRedirects:
        raise _Failed(f"more than {settings.max_redirects} redirects") from None
    except httpx.UnsupportedProtocol as exc:
        # Feed addresses are http(s) (config.py), so this is a redirect to file://, ftp://...
        try:
            target = f"{exc.request.url.scheme}://"
        except RuntimeError:  # no request attached to the error
            target = "a non-HTTP address"
        raise _Failed(f"refused to follow a redirect to {target} (only http and https)") from None
    except httpx.TimeoutException as exc:
        raise _Transient(f"timed out ({type(exc).__name__})") from None
    except httpx.ConnectError as exc:
        raise _Transient(f"cannot connect: {exc}") from None
    except httpx.RemoteProtocolError as exc:
        if str(exc).startswith("Invalid URL in location header"):  # httpx's words
            detail = str(exc).removeprefix("Invalid URL in location header:").strip(" .")
            raise _Failed(f"redirect to an invalid address ({detail})") from None
        raise _Transient(f"connection broke: {exc or type(exc).__name__}") from None
    except (httpx.ReadError, httpx.WriteError) as exc:
        raise _Transient(f"connection broke: {exc or type(exc).__name__}") from None
    except httpx.HTTPError as exc:
        raise _Failed(f"{type(exc).__name__}: {exc}") from None


async def _fetch_one(
    client: httpx.AsyncClient,
    feed: Feed,
    address: str,
    state: FeedState,
    settings: FetchSettings,
    overall: asyncio.Semaphore,
    per_host: asyncio.Semaphore,
) -> FetchResult:
    # The deadline and the clock start when a slot is free, not while the feed waits its turn.
    async with overall, per_host:
        started_at = datetime.now(UTC)
        clock = time.monotonic()
        attempts = 0

        def result(outcome: str, **values: object) -> FetchResult:
            duration = int((time.monotonic() - clock) * 1000)
            if isinstance(values.get("error"), str):
                values["error"] = _clean(values["error"])  # type: ignore[arg-type]
            return FetchResult(
                feed.name,
                feed.url,
                started_at,
                outcome,
                duration_ms=duration,
                attempts=attempts,
                previous=state,
                **values,  # type: ignore[arg-type]
            )

        try:
            async with asyncio.timeout(settings.deadline_seconds):
                while True:
                    attempts += 1
                    try:
                        answer = await _request(client, address, state, settings)
                        break
                    except _Transient as exc:
                        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
                        failed = {"status_code": exc.status, "retry_after": exc.retry_after}
                        if attempts > settings.retries:
                            return result(FAILED, error=f"{exc} (after {tries})", **failed)
                        delay = exc.retry_after
                        if delay is None:
                            delay = settings.retry_backoff_seconds * 2 ** (attempts - 1)
                        left = settings.deadline_seconds - (time.monotonic() - clock)
                        if exc.retry_after is not None and delay >= left:
                            # Waiting would only end in "no complete answer": say what happened.
                            return result(
                                FAILED,
                                error=f"{exc} (after {tries}; not retried: the server asked to "
                                f"wait past the {settings.deadline_seconds:g} s deadline)",
                                **failed,
                            )
                        if delay > MAX_RETRY_AFTER_SECONDS:
                            # Longer than a cycle should wait: polling.py keeps the feed
                            # from being asked again before then.
                            return result(
                                FAILED,
                                error=f"{exc} (after {tries}; not retried now: the server "
                                f"asked to wait {delay:.0f} s)",
                                **failed,
                            )
                        await asyncio.sleep(delay)
        except TimeoutError:
            return result(
                FAILED, error=f"no complete answer within {settings.deadline_seconds:g} s"
            )
        except _Failed as exc:
            return result(FAILED, error=str(exc), status_code=exc.status)
        except Exception as exc:  # one feed must never fail the cycle, whatever goes wrong
            return result(FAILED, error=f"unexpected {type(exc).__name__}: {exc}")

    headers, body = answer.headers, answer.body
    common = {
        "final_url": answer.final_url,
        "status_code": answer.status,
        "headers": headers,
        "etag": headers.get("etag"),
        "last_modified": headers.get("last-modified"),
        "max_age": answer.max_age,
        "moved_to": answer.moved_to,
    }
    if body is None:
        # A 304 may omit the validators; the ones we sent are still the right ones.
        common["etag"] = common["etag"] or state.etag
        common["last_modified"] = common["last_modified"] or state.last_modified
        return result(NOT_MODIFIED, body_hash=state.body_hash, **common)
    digest = body_hash(body)
    if digest == state.body_hash:
        return result(UNCHANGED, bytes_read=len(body), body_hash=digest, **common)
    return result(OK, body=body, bytes_read=len(body), body_hash=digest, **common)


async def fetch_feeds_async(
    feeds: Iterable[Feed],
    states: Mapping[str, FeedState],
    settings: FetchSettings,
    addresses: Mapping[str, str] | None = None,
) -> list[FetchResult]:
    feeds = list(feeds)
    addresses = addresses or {}
    overall = asyncio.Semaphore(settings.concurrency)
    hosts: dict[str, asyncio.Semaphore] = {}
    timeout = httpx.Timeout(settings.timeout_seconds)
    limits = httpx.Limits(
        max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
    )
    async with httpx.AsyncClient(
        timeout=timeout,
        limits=limits,
        follow_redirects=True,
        max_redirects=settings.max_redirects,
        headers={
            "User-Agent": settings.user_agent_header,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        },
    ) as client:
        tasks = []
        for feed in feeds:
            address = addresses.get(feed.name, feed.url)
            host = urlsplit(address).netloc.lower()
            per_host = hosts.setdefault(host, asyncio.Semaphore(settings.per_host_concurrency))
            state = states.get(feed.name, FeedState())
            tasks.append(_fetch_one(client, feed, address, state, settings, overall, per_host))
        return list(await asyncio.gather(*tasks))


def fetch_feeds(
    feeds: Iterable[Feed],
    states: Mapping[str, FeedState],
    settings: FetchSettings,
    addresses: Mapping[str, str] | None = None,
) -> list[FetchResult]:
    """Fetch every feed once; returns one FetchResult per feed, in the order given. A feed
    named in `addresses` is asked there (where it moved) instead of at its configured url."""
    return asyncio.run(fetch_feeds_async(feeds, states, settings, addresses))
