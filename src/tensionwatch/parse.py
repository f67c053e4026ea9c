"""Parse fetched feed bodies into stories: clean text, stable ids, sane times.

feedparser is always handed the bytes we fetched and the response headers, never a URL or a
str, so it does no I/O of its own and detects the encoding from the real bytes and headers.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser

from tensionwatch.text import clean_text, fold

# A published time outside this window is not believed: the story's time becomes first-seen.
EARLIEST_SANE = datetime(1995, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)

# Query parameters that only track the reader; dropping them lets one article keep one id.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "mc_cid",
        "mc_eid",
        "cmpid",
        "at_medium",
        "at_campaign",
        "ito",
        "ocid",
        "smid",
        "smtyp",
        "ref",
        "rss",
        "src",
        "cmp",
        "partner",
    }
)

# feedparser's bozo exceptions that are only about the declared encoding: the entries are fine.
_ENCODING_NOTES = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


@dataclass(frozen=True, slots=True)
class Story:
    story_id: str
    feed_id: str
    title: str
    summary: str
    url: str | None
    guid: str | None
    published_at: datetime | None
    first_seen_at: datetime
    event_at: datetime
    language: str


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    feed_id: str
    stories: list[Story] = field(default_factory=list)
    entries_seen: int = 0
    title: str | None = None
    warning: str | None = None
    error: str | None = None


def canonical_url(url: str) -> str:
    """Scheme-less, lower-cased host, no fragment, no tracking parameters, sorted query."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
    )
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("", host, path, urlencode(query), ""))


def story_identity(
    guid: str | None, link: str | None, title: str, summary: str, feed_url: str
) -> str:
    """The key a story is known by: its guid, else its canonical link, else its text."""
    if guid:
        guid = guid.strip()
        if guid.lower().startswith(("http://", "https://")):
            return "url:" + canonical_url(guid)
        if ":" in guid:  # tag:, urn: and other globally scoped ids
            return "id:" + guid
        # A bare guid ("12345") is only unique within its publisher.
        return f"id:{urlsplit(feed_url).hostname}:{guid}"
    if link:
        return "url:" + canonical_url(link)
    return "text:" + fold(title) + "\n" + fold(summary)


def story_id(identity: str) -> str:
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _entry_time(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get: feedparser's own get() maps missing keys to others, with a warning.
        parsed = dict.get(entry, key)  # type: ignore[call-overload]
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def _is_sane(moment: datetime, seen_at: datetime) -> bool:
    return EARLIEST_SANE <= moment <= seen_at + FUTURE_TOLERANCE


def _summary(entry: Mapping[str, Any]) -> str:
    summary = entry.get("summary")
    if not summary:
        content = entry.get("content") or []
        summary = content[0].get("value") if content else ""
    return summary or ""


def parse_feed(
    feed_id: str,
    feed_url: str,
    language: str,
    body: bytes,
    headers: Mapping[str, str],
    fetched_at: datetime,
) -> ParsedFeed:
    """Turn one fetched body into stories. Problems are returned, never raised."""
    with warnings.catch_warnings():
        # feedparser warns about its own internals on some inputs; they are not ours to fix.
        warnings.simplefilter("ignore")
        # No sanitising and no relative-link resolution inside summaries: clean_text strips all
        # markup anyway, and together they were a third of feedparser's time (bench/RESULTS.md).
        parsed = feedparser.parse(
            io.BytesIO(body),
            response_headers=dict(headers),
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    entries = parsed.get("entries", [])
    warning = error = None
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        message = f"{type(exc).__name__}: {exc}" if exc else "malformed feed"
        if isinstance(exc, _ENCODING_NOTES):
            warning = message
        elif entries:
            warning = f"malformed feed, {len(entries)} entries recovered ({message})"
        else:
            error = f"not a readable feed ({message})"
    elif not entries and not parsed.get("version"):
        error = "not a feed (no RSS or Atom document found)"

    stories: list[Story] = []
    for entry in entries:
        title = clean_text(entry.get("title"))
        summary = clean_text(_summary(entry))
        if not title and not summary:
            continue
        link = entry.get("link") or None
        if link and not link.startswith(("http://", "https://")):
            link = urljoin(feed_url, link)  # a relative link, resolved against the feed's address
        guid = entry.get("id") or None
        identity = story_identity(guid, link, title, summary, feed_url)
        published = _entry_time(entry)
        event_at = published if published and _is_sane(published, fetched_at) else fetched_at
        stories.append(
            Story(
                story_id=story_id(identity),
                feed_id=feed_id,
                title=title,
                summary=summary,
                url=link,
                guid=guid,
                published_at=published,
                first_seen_at=fetched_at,
                event_at=event_at,
                language=language,
            )
        )
    feed_title = clean_text(parsed.get("feed", {}).get("title")) or None
    return ParsedFeed(feed_id, stories, len(entries), feed_title, warning, error)
