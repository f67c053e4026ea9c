"""polling.py's decisions as pure functions: when a feed is asked again, and why. No network,
no clock: every time is passed in."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tensionwatch.config import PollingSettings
from tensionwatch.polling import (
    GONE,
    INTERVAL,
    MAX_AGE,
    NETWORK_DOWN,
    NOT_DUE,
    RETIRED,
    RETRY_AFTER,
    TTL,
    WAITING,
    after_fetch,
    backoff,
    is_due,
    jitter,
    max_age_seconds,
    not_asked,
    retry_after_seconds,
    ttl_minutes,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SETTINGS = PollingSettings()  # 15 min, ttl/max-age cap 24 h, backoff cap 24 h, Retry-After 7 d


def fetched(**values):
    """after_fetch for feed "desk" at NOW, an answer unless told otherwise."""
    arguments = {"failures": 0, "answered": True, "status": 200, "now": NOW, "settings": SETTINGS}
    return after_fetch("desk", **{**arguments, **values})


# --- Retry-After, Cache-Control, <ttl>: hostile header values --------------------------------


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("120", 120.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Tue, 24 Nov 2026 14:00:00 GMT", 7200.0),  # HTTP-date: two hours from NOW
        ("Tuesday, 24-Nov-26 14:00:00 GMT", 7200.0),  # the obsolete RFC 850 form
        ("Tue, 24 Nov 2026 11:00:00 GMT", 0.0),  # in the past: now
        ("99999999999999999999999", 1e12),  # huge: large, never an error (callers cap it)
        ("9" * 5000, 1e12),  # int() refuses this many digits; never reaches it
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value, seconds):
    assert retry_after_seconds(value, NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [None, "", "-5", "+5", "1.5", "1e9", "soon", "²", "٣٠", "１２", "Tue, 99 Foo 2026", "x" * 500],
)
def test_retry_after_ignores_what_is_not_a_wait(value):
    assert retry_after_seconds(value, NOW) is None


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("max-age=600", 600.0),
        ("public, max-age=3600, must-revalidate", 3600.0),
        ('max-age="60"', 60.0),
        ("MAX-AGE=60, max-age=30", 30.0),  # several: the shortest
        ("no-cache, max-age=600", None),  # no-cache: nothing to wait for
        ("no-store", None),
        ("max-age=-1", None),
        ("max-age=٣٠", None),
        ("max-age=99999999999999999999", 1e12),
        ("s-maxage=600", None),
        (None, None),
    ],
)
def test_max_age_is_read_from_cache_control(value, seconds):
    assert max_age_seconds(value) == seconds


@pytest.mark.parametrize(
    "value, minutes",
    [("60", 60), (" 90 ", 90), ("0", None), ("-1", None), ("soon", None), ("²", None), (None, None),
     (60, None)],
)  # fmt: skip
def test_ttl_is_a_plain_number_of_minutes(value, minutes):
    assert ttl_minutes(value) == minutes


# --- an answer: the interval, <ttl>, max-age, each capped ---------------------------------------


def test_an_answer_is_due_again_after_the_minimum_interval():
    schedule = fetched()
    assert schedule.next_due_at == NOW + timedelta(minutes=15)
    assert schedule.reason == INTERVAL and schedule.failures == 0


def test_a_per_feed_interval_replaces_the_minimum():
    assert fetched(interval_minutes=60).next_due_at == NOW + timedelta(hours=1)
    assert fetched(interval_minutes=5).next_due_at == NOW + timedelta(minutes=5)


def test_ttl_and_max_age_lengthen_the_interval_but_never_past_the_cap():
    assert fetched(ttl=120).next_due_at == NOW + timedelta(hours=2)
    assert fetched(ttl=120).reason == TTL
    assert fetched(max_age=7200, ttl=60).reason == MAX_AGE
    assert fetched(ttl=5).reason == INTERVAL  # shorter than the minimum: the minimum wins
    hostile = fetched(ttl=10**12, max_age=1e12)
    assert hostile.next_due_at == NOW + timedelta(hours=24)
    assert fetched(max_age=float("inf")).next_due_at == NOW + timedelta(minutes=15)


def test_an_answer_resets_the_failures():
    assert fetched(failures=7).failures == 0


# --- failures: backoff with jitter, capped; Retry-After; 410; the network down ------------------


def test_backoff_doubles_per_failure_with_at_most_a_quarter_of_jitter_and_stops_at_the_cap():
    waits = [backoff("desk", n, SETTINGS) for n in range(1, 12)]
    for n, wait in enumerate(waits, 1):
        full = min(timedelta(minutes=15) * 2 ** (n - 1), timedelta(hours=24))
        assert full * 0.75 <= wait <= full, n
    assert waits[0] < timedelta(minutes=15) < waits[2]
    assert max(waits) <= timedelta(hours=24)


def test_jitter_is_the_same_for_the_same_feed_and_count_and_spreads_feeds_apart():
    assert jitter("desk", 3) == jitter("desk", 3)
    spread = {round(jitter(f"feed_{n}", 3), 6) for n in range(50)}
    assert len(spread) == 50 and min(spread) < 0.2 and max(spread) > 0.8


def test_a_failure_counts_and_backs_off_and_the_reason_says_how_many():
    first = fetched(answered=False, status=500)
    assert first.failures == 1 and first.reason == "backoff after 1 failure"
    fifth = fetched(answered=False, status=500, failures=4)
    assert fifth.failures == 5 and fifth.reason == "backoff after 5 failures"
    assert fifth.next_due_at == NOW + backoff("desk", 5, SETTINGS)


@given(failures=st.integers(min_value=0, max_value=10**6), cap=st.floats(0.1, 720))
def test_a_failing_feed_is_always_asked_again_within_the_cap(failures, cap):
    settings = PollingSettings(max_backoff_hours=cap)
    schedule = fetched(answered=False, status=None, failures=failures, settings=settings)
    assert NOW < schedule.next_due_at <= NOW + timedelta(hours=cap)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_on_429_and_503_holds_the_feed_until_then(status):
    told = fetched(answered=False, status=status, retry_after=7200)
    assert told.next_due_at == NOW + timedelta(hours=2) and told.reason == RETRY_AFTER
    assert told.failures == 1
    # Longer than 7 days (polling.max_retry_after_hours): 7 days.
    huge = fetched(answered=False, status=status, retry_after=1e12)
    assert huge.next_due_at == NOW + timedelta(days=7)
    # Shorter than the backoff: the backoff.
    short = fetched(answered=False, status=status, retry_after=1, failures=3)
    assert short.reason == "backoff after 4 failures"


def test_retry_after_counts_only_on_429_and_503():
    assert fetched(answered=False, status=500, retry_after=7200).reason == "backoff after 1 failure"


def test_410_gone_retires_the_feed_for_good():
    gone = fetched(answered=False, status=410, failures=2)
    assert gone.next_due_at is None and gone.reason == GONE and gone.retired_at == NOW
    assert not is_due(None, GONE, NOW + timedelta(days=3650))
    assert not_asked(GONE, 3) == RETIRED


def test_a_feed_not_to_be_retired_counts_410_as_a_failure_and_is_due_again_at_once():
    kept = fetched(answered=False, status=410, failures=2, retire=False)
    assert kept.reason == "backoff after 3 failures" and kept.retired_at is None
    assert is_due(None, GONE, NOW, retire=False)


def test_a_cycle_with_the_network_down_holds_no_failure_against_the_feed():
    down = fetched(answered=False, status=None, failures=3, network_down=True)
    assert down.failures == 3 and down.reason == NETWORK_DOWN
    assert down.next_due_at == NOW + timedelta(minutes=15)


# --- due or not --------------------------------------------------------------------------------


def test_a_feed_never_asked_is_due():
    assert is_due(None, None, NOW)


def test_a_feed_due_within_two_minutes_is_asked_now_except_after_retry_after():
    due = NOW + timedelta(seconds=90)
    assert is_due(due, INTERVAL, NOW) and is_due(due, "backoff after 2 failures", NOW)
    assert not is_due(NOW + timedelta(minutes=5), INTERVAL, NOW)
    assert not is_due(due, RETRY_AFTER, NOW)  # the server set it: not a second early
    assert is_due(due, RETRY_AFTER, due)


def test_a_feed_not_asked_is_waiting_when_failing_or_told_to_wait_else_not_due():
    assert not_asked(INTERVAL, 0) == NOT_DUE
    assert not_asked(TTL, 0) == NOT_DUE
    assert not_asked("backoff after 2 failures", 2) == WAITING
    assert not_asked(RETRY_AFTER, 1) == WAITING
