"""When to ask each feed again: polite, adaptive polling as pure decisions.

Everything here is a function of plain values — what a feed's stored state says, what this
fetch got (answered or not, the HTTP status, Retry-After, Cache-Control max-age, the feed's
<ttl>), the time, the settings — with no I/O, no clock and no random source, so each rule is
tested without a network or a wait. fetch.py asks, cycle.py calls these, store.py keeps the
result in `feeds` (README "Polling"):

- A feed that answered is next due after its interval: its own `interval_minutes`, else
  `polling.min_interval_minutes`; longer when its <ttl> or Cache-Control max-age asks, each cut
  to `polling.max_interval_hours`, so no value a feed sends stops it being read for longer.
- A feed that failed backs off: its interval × 2^(failures − 1), shortened by up to a quarter
  (jitter drawn from the feed's id and failure count, so feeds that failed together spread
  out, and a test knows the value), never longer than `polling.max_backoff_hours`: a failing
  feed is asked again at least once per cap, for as long as it fails. An answer resets it.
- 429 or 503 with Retry-After: not asked before then, cut to `polling.max_retry_after_hours`.
- 410 Gone: retired, never due again, until its configured address changes (or its
  `retire_when_gone` is set to false: then 410 is a failure like any other).
- A cycle in which the network looked down (no feed, on two hosts or more, could be reached)
  holds no failure against a feed: it is due again after its interval, its count unchanged.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from tensionwatch.config import PollingSettings

# Outcomes of a feed that was not asked this cycle (fetches.outcome; the asked ones are
# fetch.py's ok / not_modified / unchanged / error).
NOT_DUE = "not_due"  # its interval, <ttl> or max-age has not run out: healthy, counts as answered
WAITING = "waiting"  # backing off after failures, or told to wait by Retry-After: not answering
RETIRED = "retired"  # it answered 410 Gone: not answering until its address changes
NOT_ASKED = frozenset({NOT_DUE, WAITING, RETIRED})

# Why a feed is next due when it is (feeds.due_reason, fetches.due_reason).
INTERVAL = "interval"
TTL = "ttl"
MAX_AGE = "max-age"
RETRY_AFTER = "retry-after"
GONE = "gone"
NETWORK_DOWN = "network down"
BACKOFF = "backoff"  # written as "backoff after N failures"

GONE_STATUS = 410
RETRY_AFTER_STATUS = frozenset({429, 503})
# A feed due within this much of now is asked now: a cycle that starts a few seconds early, or
# a feed that answered late in the last one, must not push it to every other cycle. Never for
# Retry-After, which the server set.
DUE_EARLY = timedelta(minutes=2)
JITTER = 0.25  # a backoff is shortened by up to this share
# Header values are cut to this many digits before reading (int() refuses 4,300 digits or
# more, and nothing useful is longer than a few).
_MAX_DIGITS = 12


@dataclass(frozen=True, slots=True)
class Schedule:
    """A feed's polling state after one fetch."""

    next_due_at: datetime | None  # None: retired, never due
    reason: str  # INTERVAL, TTL, MAX_AGE, RETRY_AFTER, GONE, NETWORK_DOWN or "backoff after N…"
    failures: int  # failed fetches in a row (network-down cycles not counted)
    retired_at: datetime | None = None


def _digits(value: str) -> int | None:
    """A non-negative whole number written in ASCII digits only ("²" and "٣" are digits to
    str.isdigit, and not to HTTP), at most _MAX_DIGITS of them; else None."""
    value = value.strip()
    if not value or not value.isascii() or not value.isdigit():
        return None
    return int(value[:_MAX_DIGITS]) if len(value) <= _MAX_DIGITS else 10**_MAX_DIGITS


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds a Retry-After header asks us to wait, as of `now`: delta-seconds ("120") or an
    HTTP-date ("Wed, 21 Oct 2026 07:28:00 GMT"); 0 for a date in the past; None for anything
    else (negative, garbage, non-ASCII digits). Huge values come back huge: the caller caps."""
    if value is None:
        return None
    seconds = _digits(value)
    if seconds is not None:
        return float(seconds)
    if not value.isascii() or len(value) > 100:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def max_age_seconds(cache_control: str | None) -> float | None:
    """The max-age of a Cache-Control header in seconds, or None (none given, `no-cache` or
    `no-store`: nothing to wait for). Several max-ages: the shortest."""
    if not cache_control or not cache_control.isascii():
        return None
    ages = []
    for directive in cache_control.lower().split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip()
        if name in ("no-cache", "no-store"):
            return None
        if name == "max-age":
            seconds = _digits(value.strip().strip('"'))
            if seconds is not None:
                ages.append(float(seconds))
    return min(ages) if ages else None


def ttl_minutes(value: object) -> int | None:
    """An RSS <ttl> (minutes) as feedparser gives it, or None when absent, zero or not a
    plain number."""
    if not isinstance(value, str):
        return None
    minutes = _digits(value)
    return minutes if minutes else None


def interval(settings: PollingSettings, interval_minutes: float | None = None) -> timedelta:
    """A feed's own interval: from config.yaml, else the minimum."""
    return timedelta(minutes=interval_minutes or settings.min_interval_minutes)


def jitter(feed_id: str, failures: int) -> float:
    """A fraction in [0, 1), the same for the same feed and failure count."""
    digest = hashlib.blake2b(f"{feed_id}\n{failures}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def backoff(
    feed_id: str, failures: int, settings: PollingSettings, interval_minutes: float | None = None
) -> timedelta:
    """How long a feed that failed `failures` times in a row waits: its interval doubled per
    failure after the first, up to a quarter shorter (jitter), never longer than the cap."""
    cap = settings.max_backoff_hours * 3600
    base = interval(settings, interval_minutes).total_seconds()
    # In float seconds: a long run of failures would overflow a timedelta long before the cap.
    doubled = base * 2.0 ** min(max(failures, 1) - 1, 64)
    return timedelta(seconds=min(doubled, cap) * (1 - JITTER * jitter(feed_id, failures)))


def after_fetch(
    feed_id: str,
    *,
    failures: int,
    answered: bool,
    status: int | None,
    now: datetime,
    settings: PollingSettings,
    interval_minutes: float | None = None,
    retry_after: float | None = None,
    max_age: float | None = None,
    ttl: int | None = None,
    network_down: bool = False,
    retire: bool = True,
) -> Schedule:
    """The feed's next due time after a fetch that ended at `now`.

    `failures` is the count before this fetch; `answered` whether it got a feed (200 that
    parsed, 304, or the same body); `retry_after` and `max_age` are seconds from the answer's
    headers; `ttl` the feed's <ttl> in minutes (this body's, else the one last seen);
    `retire` whether a 410 retires it.
    """
    if status == GONE_STATUS and retire:
        return Schedule(None, GONE, failures + 1, retired_at=now)
    regular = interval(settings, interval_minutes)
    if answered:
        cap = settings.max_interval_hours * 3600
        hints = [(regular.total_seconds(), INTERVAL)]
        if ttl:
            hints.append((min(ttl * 60.0, cap), TTL))
        if max_age is not None and math.isfinite(max_age):
            hints.append((min(max_age, cap), MAX_AGE))
        wait, reason = max(hints, key=lambda hint: hint[0])  # the first of equals: interval
        return Schedule(now + timedelta(seconds=wait), reason, 0)
    if network_down:
        return Schedule(now + regular, NETWORK_DOWN, failures)
    failures += 1
    due = now + backoff(feed_id, failures, settings, interval_minutes)
    reason = f"{BACKOFF} after {failures} failure{'s' if failures > 1 else ''}"
    if status in RETRY_AFTER_STATUS and retry_after is not None and math.isfinite(retry_after):
        cap = settings.max_retry_after_hours * 3600
        asked = now + timedelta(seconds=min(max(retry_after, 0.0), cap))
        if asked >= due:
            due, reason = asked, RETRY_AFTER
    return Schedule(due, reason, failures)


def is_due(
    next_due_at: datetime | None, reason: str | None, now: datetime, retire: bool = True
) -> bool:
    """Whether a feed is asked in a cycle at `now`. Never asked: due. Retired: never, unless
    the feed is no longer to be retired (`retire` false in config.yaml): then at once."""
    if reason == GONE:
        return not retire
    if next_due_at is None:
        return True
    if reason == RETRY_AFTER:
        return now >= next_due_at
    return now + DUE_EARLY >= next_due_at


def not_asked(reason: str | None, failures: int) -> str:
    """The outcome of a feed that is not due: NOT_DUE, WAITING or RETIRED."""
    if reason == GONE:
        return RETIRED
    if failures or reason == RETRY_AFTER:
        return WAITING
    return NOT_DUE
