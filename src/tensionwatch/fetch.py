"""Fetch feeds politely and concurrently; every feed's outcome comes back as a value.

Polite: one User-Agent that names us, conditional GET (ETag / If-Modified-Since), a global
and a per-host concurrency cap, capped redirects. Robust: a per-request timeout and a total
deadline per feed, a body-size cap enforced while streaming (after decompression, so a small
gzip bomb cannot blow up memory), retries with backoff for transient failures only (timeouts,
connection errors, 429 and 5xx), and no exception ever escapes for a single feed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from tensionwatch.config import Feed, FetchSettings

OK, NOT_MODIFIED, UNCHANGED, FAILED = "ok", "not_modified", "unchanged", "error"
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 30.0
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
# Response headers feedparser may use. Content-Encoding is left out because httpx has already
# decoded the body (feedparser would gunzip it again), and Content-Location because a base
# address makes feedparser resolve every link in every summary: slow, and parse.py resolves
# the entry links it keeps itself.
_KEPT_HEADERS = ("content-type", "content-language", "etag", "last-modified")


@dataclass(frozen=True, slots=True)
class FeedState:
    """What we remember about a feed between cycles, for conditional GET."""

    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None


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


class _Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _Failed(Exception):
    """A permanent failure for this cycle (4xx, too large, too many redirects)."""


def body_hash(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return min(float(value), MAX_RETRY_AFTER_SECONDS) if value.isdigit() else None


async def _request(
    client: httpx.AsyncClient, feed: Feed, state: FeedState, settings: FetchSettings
) -> tuple[int, str, bytes | None, dict[str, str]]:
    headers = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    try:
        async with client.stream("GET", feed.url, headers=headers) as response:
            status = response.status_code
            final_url = str(response.url)
            kept = {k: response.headers[k] for k in _KEPT_HEADERS if k in response.headers}
            if status == 304:
                return status, final_url, None, kept
            if status in TRANSIENT_STATUS:
                raise _Transient(f"HTTP {status} {response.reason_phrase}", _retry_after(response))
            if status >= 400:
                raise _Failed(f"HTTP {status} {response.reason_phrase}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > settings.max_body_bytes:
                raise _Failed(
                    f"body of {declared} bytes is over the {settings.max_body_bytes}-byte cap"
                )
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > settings.max_body_bytes:
                    raise _Failed(f"body is over the {settings.max_body_bytes}-byte cap")
                chunks.append(chunk)
            return status, final_url, b"".join(chunks), kept
    except httpx.TooManyRedirects:
        raise _Failed(f"more than {settings.max_redirects} redirects") from None
    except httpx.TimeoutException as exc:
        raise _Transient(f"timed out ({type(exc).__name__})") from None
    except httpx.ConnectError as exc:
        raise _Transient(f"cannot connect: {exc}") from None
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise _Transient(f"connection broke: {exc or type(exc).__name__}") from None
    except httpx.DecodingError as exc:
        raise _Failed(f"cannot decode body: {exc}") from None
    except httpx.HTTPError as exc:
        raise _Failed(f"{type(exc).__name__}: {exc}") from None


async def _fetch_one(
    client: httpx.AsyncClient,
    feed: Feed,
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
            return FetchResult(
                feed.name,
                feed.url,
                started_at,
                outcome,
                duration_ms=duration,
                attempts=attempts,
                **values,  # type: ignore[arg-type]
            )

        try:
            async with asyncio.timeout(settings.deadline_seconds):
                while True:
                    attempts += 1
                    try:
                        status, final_url, body, headers = await _request(
                            client, feed, state, settings
                        )
                        break
                    except _Transient as exc:
                        if attempts > settings.retries:
                            return result(FAILED, error=f"{exc} (after {attempts} attempts)")
                        delay = exc.retry_after
                        if delay is None:
                            delay = settings.retry_backoff_seconds * 2 ** (attempts - 1)
                        await asyncio.sleep(delay)
        except TimeoutError:
            return result(
                FAILED, error=f"no complete answer within {settings.deadline_seconds:g} s"
            )
        except _Failed as exc:
            return result(FAILED, error=str(exc))
        except Exception as exc:  # one feed must never fail the cycle, whatever goes wrong
            return result(FAILED, error=f"unexpected {type(exc).__name__}: {exc}")

    common = {
        "final_url": final_url,
        "status_code": status,
        "headers": headers,
        "etag": headers.get("etag"),
        "last_modified": headers.get("last-modified"),
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
    feeds: Iterable[Feed], states: Mapping[str, FeedState], settings: FetchSettings
) -> list[FetchResult]:
    feeds = list(feeds)
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
        headers={"User-Agent": settings.user_agent, "Accept": ACCEPT},
    ) as client:
        tasks = []
        for feed in feeds:
            host = urlsplit(feed.url).netloc.lower()
            per_host = hosts.setdefault(host, asyncio.Semaphore(settings.per_host_concurrency))
            state = states.get(feed.name, FeedState())
            tasks.append(_fetch_one(client, feed, state, settings, overall, per_host))
        return list(await asyncio.gather(*tasks))


def fetch_feeds(
    feeds: Iterable[Feed], states: Mapping[str, FeedState], settings: FetchSettings
) -> list[FetchResult]:
    """Fetch every feed once; returns one FetchResult per feed, in the order given."""
    return asyncio.run(fetch_feeds_async(feeds, states, settings))
