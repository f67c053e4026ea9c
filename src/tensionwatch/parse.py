"""Parse fetched feed bodies into stories: clean text, stable ids, sane times.

feedparser is always handed the bytes we fetched and the response headers, never a URL or a
str, so it does no I/O of its own and detects the encoding from the real bytes and headers.
Two things are done to the bytes first, because feedparser gets them wrong: a body declared
UTF-8 that is not UTF-8 is read in the legacy encoding of the feed's language (a Turkish feed
in Windows-1254 would otherwise be read as Windows-1252, "ı" becoming "ý"), and, only if
feedparser raises, character references that name no character (`&#xD800;`) are replaced
and the body is parsed again. Every text field that leaves this module is free of control
characters and lone surrogates, and titles and summaries are capped (text.clean_text).
"""

from __future__ import annotations

import calendar
import codecs
import hashlib
import io
import json
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser

from tensionwatch.polling import ttl_minutes
from tensionwatch.text import (
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    clean_text,
    describe_error,
    fold,
    strip_controls,
)

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

# The single-byte encoding a feed in this language uses when its bytes are not the UTF-8 it
# declares (or implies, by declaring nothing). Anything else falls back to Windows-1252.
LEGACY_ENCODINGS = {
    "tr": "cp1254",
    "az": "cp1254",
    "ru": "cp1251",
    "uk": "cp1251",
    "bg": "cp1251",
    "sr": "cp1251",
    "fa": "cp1256",
    "ar": "cp1256",
    "ur": "cp1256",
    "he": "cp1255",
    "el": "cp1253",
    "pl": "cp1250",
    "cs": "cp1250",
    "hu": "cp1250",
}
_XML_DECLARATION = re.compile(rb"^(\s*<\?xml[^>]*?encoding\s*=\s*[\"'])([A-Za-z0-9._-]+)([\"'])")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
# Byte-order marks and their codecs; UTF-32 first, as its little-endian mark starts like UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# A numeric character reference: feedparser raises on those that name no character.
_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,16})|([0-9]{1,20}));")
# The longest guid and link kept (the story id is computed from the whole value).
MAX_REFERENCE_CHARS = 2_048


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
    ttl_minutes: int | None = None  # the feed's RSS <ttl>: how long it may be cached

    @property
    def newest_at(self) -> datetime | None:
        """The newest published time among its stories (feeds check prints it)."""
        return max((s.published_at for s in self.stories if s.published_at), default=None)


def canonical_url(url: str) -> str:
    """Scheme-less, lower-cased host, no fragment, no tracking parameters, sorted query.

    An address that cannot be taken apart (a port of 99999, a broken IPv6 host) is its own
    canonical form, stripped: one bad link never costs its feed's other stories.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    host = (parts.hostname or "").lower().removeprefix("www.")
    if port and port not in (80, 443):
        host = f"{host}:{port}"
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


# A numeric zone at the end of a date: feedparser reads "+9999" as 99 h 99 min, a date
# shifted by four days. Real zones lie within ±14:00.
_ZONE = re.compile(r"([+-])(\d{2}):?(\d{2})\s*$")


def _impossible_zone(raw: Any) -> bool:
    zone = _ZONE.search(raw) if isinstance(raw, str) else None
    return bool(zone) and (
        int(zone.group(2)) * 60 + int(zone.group(3)) > 14 * 60 or int(zone.group(3)) > 59
    )


def _entry_time(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get: feedparser's own get() maps missing keys to others, with a warning.
        parsed = dict.get(entry, key)  # type: ignore[call-overload]
        if parsed and _impossible_zone(dict.get(entry, key.removesuffix("_parsed"))):  # type: ignore[call-overload]
            continue
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
    return _text(summary)


def _encoding_name(label: str) -> str | None:
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def _declared_encoding(body: bytes, headers: Mapping[str, str]) -> str | None:
    charset = _CHARSET.search(headers.get("content-type", ""))
    if charset:
        return _encoding_name(charset.group(1))
    declaration = _XML_DECLARATION.match(body[:512])
    if declaration:
        return _encoding_name(declaration.group(2).decode("ascii"))
    return None


def _as_utf8(text: str, headers: dict[str, str]) -> bytes:
    """Text handed to feedparser as UTF-8, with the headers and XML declaration saying so."""
    media_type = headers.get("content-type", "application/xml").split(";")[0].strip()
    headers["content-type"] = f"{media_type or 'application/xml'}; charset=utf-8"
    return _XML_DECLARATION.sub(rb"\1utf-8\3", text.encode("utf-8"), count=1)


def read_as_utf8(
    body: bytes, headers: Mapping[str, str], language: str
) -> tuple[bytes, dict[str, str], str | None]:
    """The body and headers to hand feedparser, and a note when the body was re-read.

    - A byte-order mark decides the encoding, whatever the headers say (feedparser lets a
      `charset=utf-16` header override a big-endian mark and reads the body backwards).
    - A body that declares UTF-8 (or nothing, which for XML means UTF-8) but is not UTF-8 is
      UTF-8 with a few damaged bytes if most of its non-ASCII bytes form valid UTF-8 (the
      damaged ones become U+FFFD); otherwise it is read in its language's legacy encoding.
    - Anything else is left to feedparser's own detection.
    """
    kept = dict(headers)
    for bom, codec in _BOMS:
        if body.startswith(bom):
            text = body[len(bom) :].decode(codec, errors="replace")
            return _as_utf8(text, kept), kept, None
    if body.lstrip()[:1] != b"<" or _declared_encoding(body, kept) not in (None, "utf-8"):
        # Not ASCII-compatible XML (EBCDIC, say), or another encoding declared: feedparser's.
        return body, kept, None
    try:
        body.decode("utf-8")
        return body, kept, None
    except UnicodeDecodeError:
        pass
    text = body.decode("utf-8", errors="replace")
    # Legacy single-byte text almost never forms valid UTF-8 sequences by chance, so bytes in
    # valid multi-byte sequences outnumbering the damaged ones means UTF-8 with some damage.
    damaged = text.count("\ufffd")
    valid = sum(len(char.encode()) for char in text if char > "\x7f" and char != "\ufffd")
    if valid >= damaged:
        note = f"{damaged} byte sequence(s) that are not UTF-8 were replaced by U+FFFD"
        return _as_utf8(text, kept), kept, note
    legacy = LEGACY_ENCODINGS.get(language, "cp1252")
    note = f"declared UTF-8 but is not: read as {legacy}, the usual encoding for {language!r}"
    return _as_utf8(body.decode(legacy, errors="replace"), kept), kept, note


def _is_character(code: int) -> bool:
    return (
        (code in (0x9, 0xA, 0xD) or code >= 0x20)
        and code <= 0x10FFFF
        and not (0xD800 <= code <= 0xDFFF)
    )


def _replace_bad_references(body: bytes) -> bytes:
    """`&#xD800;`, `&#x110000;`, `&#0;` … become U+FFFD: feedparser raises on them."""

    def replace(match: re.Match[bytes]) -> bytes:
        hex_digits, digits = match.groups()
        code = int(hex_digits, 16) if hex_digits else int(digits)
        return match.group(0) if _is_character(code) else b"&#xFFFD;"

    return _CHAR_REF.sub(replace, body)


def _feedparser(body: bytes, headers: Mapping[str, str]) -> Any:
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
    parsed["_head"] = body[:1024]  # for telling an HTML page from a broken feed
    return parsed


_HTML_START = re.compile(rb"<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>])", re.IGNORECASE)


def _looks_like_json(body: bytes) -> bool:
    return body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")


def _json_feed(body: bytes) -> dict[str, Any]:
    """A JSON Feed (jsonfeed.org, versions 1 and 1.1) in the shape feedparser gives a feed.

    feedparser reads RSS and Atom only; JSON Feed is what some publishers offer instead.
    """
    try:
        # Bytes that are not UTF-8 become U+FFFD: one bad byte must not cost every item.
        document = json.loads(body.decode("utf-8-sig", errors="replace"))
    except (ValueError, RecursionError) as exc:
        return {"bozo": True, "bozo_exception": exc, "entries": []}
    version = document.get("version") if isinstance(document, dict) else None
    if not isinstance(version, str) or "jsonfeed.org" not in version:
        return {"entries": [], "_not_a_feed": "JSON, but not a JSON Feed (no jsonfeed.org version)"}
    entries = []
    for item in document.get("items") or []:
        if not isinstance(item, dict):
            continue
        entries.append(
            {
                "id": _text(item.get("id"))
                or (str(item["id"]) if isinstance(item.get("id"), int) else ""),
                "link": _text(item.get("url")) or _text(item.get("external_url")),
                "title": _text(item.get("title")),
                "summary": _text(item.get("summary"))
                or _text(item.get("content_text"))
                or _text(item.get("content_html")),
                "published_parsed": _json_time(
                    item.get("date_published") or item.get("date_modified")
                ),
            }
        )
    return {"version": "json", "feed": {"title": _text(document.get("title"))}, "entries": entries}


def _json_time(value: Any) -> time.struct_time | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).timetuple()
    except (ValueError, OverflowError):
        return None


def _reference(value: Any) -> str | None:
    """A guid or link as stored: text, no control characters, at most MAX_REFERENCE_CHARS."""
    if not isinstance(value, str):
        return None
    value = strip_controls(value).strip()
    return value[:MAX_REFERENCE_CHARS] or None


def parse_feed(
    feed_id: str,
    feed_url: str,
    language: str,
    body: bytes,
    headers: Mapping[str, str],
    fetched_at: datetime,
    base_url: str | None = None,
) -> ParsedFeed:
    """Turn one fetched body into stories. Problems are returned, never raised.

    `feed_url` is the address configured for the feed: bare guids are scoped by its host, so
    ids stay put when the outlet redirects the feed elsewhere. `base_url`, where redirects
    ended, resolves relative links.
    """
    notes: list[str] = []
    try:
        body, headers, note = read_as_utf8(body, headers, language)
        if note:
            notes.append(note)
        if not body.strip():
            return ParsedFeed(feed_id, error="empty response: the body holds no feed")
        if _looks_like_json(body):
            parsed = _json_feed(body)
            return _stories(feed_id, feed_url, language, parsed, fetched_at, base_url, notes, body)
        try:
            parsed = _feedparser(body, headers)
        except Exception as exc:  # feedparser raises on some bodies (issue 11); try once more
            repaired = _replace_bad_references(body)
            if repaired == body:
                raise
            parsed = _feedparser(repaired, headers)
            notes.append(f"characters that do not exist were replaced ({type(exc).__name__})")
        return _stories(feed_id, feed_url, language, parsed, fetched_at, base_url, notes, body)
    except Exception as exc:  # whatever a body does, it is this feed's outcome, not the cycle's
        message = describe_error(exc)
        return ParsedFeed(feed_id, error=f"cannot parse the feed ({message})")


def _stories(
    feed_id: str,
    feed_url: str,
    language: str,
    parsed: Any,
    fetched_at: datetime,
    base_url: str | None,
    notes: list[str],
    body: bytes = b"",
) -> ParsedFeed:
    entries = parsed.get("entries", [])
    error = None
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        message = strip_controls(f"{type(exc).__name__}: {exc}" if exc else "malformed feed")
        if isinstance(exc, _ENCODING_NOTES):
            notes.append(message)
        elif entries:
            if _cut_inside_last_entry(body, len(entries)):
                # Its guid, link or title may be cut short: stored now, it would be stored
                # again, whole, once the feed is sent whole (a different story to the store).
                entries = entries[:-1]
                notes.append("the body ends inside its last entry, which was skipped")
            notes.append(f"malformed feed, {len(entries)} entries recovered ({message})")
        elif parsed.get("version"):  # a feed with no entries, and a flaw: empty, not broken
            notes.append(f"malformed feed with no entries ({message})")
        else:
            error = f"not a readable feed ({message})"
    if not error and not entries and not parsed.get("version"):
        error = parsed.get("_not_a_feed") or "not a feed (no RSS or Atom document found)"
    if error and not entries and _HTML_START.search(parsed.get("_head", b"")):
        error = "an HTML page, not a feed (the address may be a web page, or a login or error page)"

    stories: list[Story] = []
    unreadable = 0
    for entry in entries:
        try:
            story = _story(entry, feed_id, feed_url, language, fetched_at, base_url)
        except Exception:  # one entry's oddity costs that entry, never its feed
            unreadable += 1
            continue
        if story is not None:
            stories.append(story)
    if unreadable:
        notes.append(f"{unreadable} entries could not be read and were skipped")
    feed = parsed.get("feed", {})
    feed_title = clean_text(_text(feed.get("title")), MAX_TITLE_CHARS) or None
    warning = "; ".join(notes) if notes else None
    ttl = ttl_minutes(feed.get("ttl"))
    return ParsedFeed(feed_id, stories, len(entries), feed_title, warning, error, ttl)


_ENTRY_OPEN = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)[\s>]", re.IGNORECASE)
_ENTRY_CLOSE = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>", re.IGNORECASE)


def _cut_inside_last_entry(body: bytes, entries: int) -> bool:
    """Whether a body that is not well-formed ends inside its last entry (a download cut
    short): every entry opens, and all but the last close. A body in an encoding these byte
    patterns cannot see (UTF-16) counts no entries, so nothing is dropped from it."""
    return (
        len(_ENTRY_OPEN.findall(body)) == entries and len(_ENTRY_CLOSE.findall(body)) == entries - 1
    )


def _story(
    entry: Mapping[str, Any],
    feed_id: str,
    feed_url: str,
    language: str,
    fetched_at: datetime,
    base_url: str | None,
) -> Story | None:
    title = clean_text(_text(entry.get("title")), MAX_TITLE_CHARS)
    summary = clean_text(_summary(entry), MAX_SUMMARY_CHARS)
    if not title and not summary:
        return None
    link = _reference(entry.get("link"))
    identity_link = link
    if link and not link.startswith(("http://", "https://")):
        # A relative link: stored resolved against where the feed was fetched from, but known
        # by the configured address, so a feed that starts redirecting keeps its story ids.
        identity_link = _joined(feed_url, link)
        link = _reference(_joined(base_url or feed_url, link))
    guid = _reference(entry.get("id"))
    identity = story_identity(
        strip_controls(str(entry.get("id") or "")) or None, identity_link, title, summary, feed_url
    )
    published = _entry_time(entry)
    event_at = published if published and _is_sane(published, fetched_at) else fetched_at
    return Story(
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


def _joined(base: str, link: str) -> str:
    try:
        return urljoin(base, link)
    except ValueError:  # a base or link urllib cannot take apart: keep the link as written
        return link


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
