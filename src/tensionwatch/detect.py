"""Spike detection: pure functions over a topic's windows, no database and no clock.

A window is a span of hours (6 h and 1 day by default, aligned to UTC midnight) with the
figures of one topic in it. The latest complete window is judged against a trailing baseline
of windows of the same width: robust z = (value − median) / spread, where spread is
1.4826 · MAD, but never less than the Poisson noise of the baseline's median count of stories
(`poisson_floor`; EARS's minSigma, in the metric's units): a topic that is usually silent has
MAD = 0, and one story must not read as an infinite z. Once enough history exists the baseline holds only the
windows of the same weekday (daily windows) or the same hours of the week (shorter ones), as
news has a weekly rhythm.

A window raises a spike only when its z reaches the threshold AND it holds at least
min_stories relevant stories AND they come from at least min_outlets outlets AND the baseline
holds at least warmup_windows usable windows AND enough feeds answered in it. Windows that too
few feeds answered are neither calm nor hot: they stay out of every baseline, and judging one
changes nothing.

A spike that lasts is one alert: `advance` keeps each topic's state. After an alert the topic is
elevated; while elevated, a new alert goes out only when the severity rises. It returns to
normal once no window (of any width) has been hot for clear_after_hours, and a topic back to
normal does not alert again within cooldown_hours of its last alert (that spike is then marked
elevated, so a rise in severity still alerts).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tensionwatch.config import AlertSettings

MAD_TO_SIGMA = 1.4826  # MAD × this estimates the standard deviation of normal data
SEVERITIES = ("elevated", "high", "critical")
WEEK = timedelta(days=7)

# Why a window raised no spike (Verdict.reason), or "spike".
SPIKE = "spike"
PARTIAL_COVERAGE = "partial coverage"
WARMING_UP = "warming up"
BELOW_THRESHOLD = "below threshold"
TOO_FEW_STORIES = "too few stories"
TOO_FEW_OUTLETS = "too few outlets"


@dataclass(frozen=True, slots=True)
class Window:
    """One topic's figures over [start, end)."""

    topic: str
    start: datetime
    end: datetime
    tension_stories: int  # relevant stories with a positive score (the share's numerator)
    all_stories: int  # every story the topic's rules could read (the share's denominator)
    events: int  # events among the tension stories
    score_sum: float  # summed score of the relevant stories
    outlets: int  # distinct outlets of the tension stories
    coverage: float | None  # feeds that answered / feeds polled; None when none was polled

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    def value(self, metric: str) -> float:
        if metric == "share":
            return self.tension_stories / self.all_stories if self.all_stories else 0.0
        if metric == "events":
            return float(self.events)
        return self.score_sum

    def count(self, metric: str) -> int:
        """The stories (or events) whose number the metric follows: the Poisson floor's unit."""
        return self.events if metric == "events" else self.tension_stories


@dataclass(frozen=True, slots=True)
class Verdict:
    window: Window
    metric: str
    value: float
    median: float | None  # of the baseline; None while warming up or not judged
    spread: float | None
    z: float | None
    baseline_windows: int
    seasonal: bool  # the baseline holds the same weekday / hours of the week only
    reason: str  # SPIKE or why not
    severity: str | None  # for a spike

    @property
    def hot(self) -> bool:
        return self.reason == SPIKE


@dataclass(frozen=True, slots=True)
class TopicState:
    """Where a topic stands between windows (kept in the database between cycles)."""

    topic: str
    severity: str | None = None  # None: normal; else elevated at this severity
    elevated_since: datetime | None = None
    last_alert_at: datetime | None = None  # the end of the window the last alert was about
    last_hot_at: datetime | None = None  # while elevated: the end of the last hot window


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    alert: bool
    why: str  # "new spike", "severity rose", or why no alert went out
    state: TopicState  # after this window


def usable(window: Window, settings: AlertSettings) -> bool:
    """Enough feeds answered in the window for its figures to mean something."""
    return window.coverage is not None and window.coverage >= settings.partial_coverage


def baseline_of(
    window: Window, history: Iterable[Window], settings: AlertSettings
) -> tuple[list[Window], bool]:
    """The windows `window` is compared with, and whether they are the seasonal choice: the
    usable windows of the same width in the baseline_days before it; or, once at least
    seasonal_min_windows exist, the usable windows of the same hours of the week in the
    seasonal_weeks before it."""
    width = window.end - window.start
    earlier = [
        w
        for w in history
        if w.end <= window.start and w.end - w.start == width and usable(w, settings)
    ]
    since = window.start - timedelta(days=settings.baseline_days)
    trailing = [w for w in earlier if w.start >= since]
    if settings.seasonal_weeks:
        seasonal_since = window.start - settings.seasonal_weeks * WEEK
        same_slot = [
            w
            for w in earlier
            if w.start >= seasonal_since and (window.start - w.start) % WEEK == timedelta(0)
        ]
        if len(same_slot) >= settings.seasonal_min_windows and len(trailing) >= (
            settings.warmup_windows
        ):
            return same_slot, True
    return trailing, False


def judge(window: Window, history: Iterable[Window], settings: AlertSettings) -> Verdict:
    """Is `window` a spike against the windows before it (`history`: any order, any width)?"""
    metric = settings.metric
    value = window.value(metric)

    def verdict(reason: str, **figures) -> Verdict:
        return Verdict(window, metric, value, reason=reason, **figures)

    if not usable(window, settings):
        return verdict(PARTIAL_COVERAGE, median=None, spread=None, z=None,
                       baseline_windows=0, seasonal=False, severity=None)  # fmt: skip
    baseline, seasonal = baseline_of(window, history, settings)
    figures = {"baseline_windows": len(baseline), "seasonal": seasonal}
    if len(baseline) < settings.warmup_windows and not seasonal:
        return verdict(WARMING_UP, median=None, spread=None, z=None, severity=None, **figures)
    values = [w.value(metric) for w in baseline]
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    spread = max(MAD_TO_SIGMA * mad, poisson_floor(window, baseline, settings))
    z = (value - median) / spread
    figures |= {"median": median, "spread": spread, "z": z}
    if z < settings.threshold:
        return verdict(BELOW_THRESHOLD, severity=None, **figures)
    if window.tension_stories < settings.min_stories:
        return verdict(TOO_FEW_STORIES, severity=None, **figures)
    if window.outlets < settings.min_outlets:
        return verdict(TOO_FEW_OUTLETS, severity=None, **figures)
    return verdict(SPIKE, severity=severity_of(z, settings), **figures)


def poisson_floor(window: Window, baseline: list[Window], settings: AlertSettings) -> float:
    """The least spread believed, in the metric's units: min_spread_stories × (√(m + 3/8) +
    threshold / 4) stories, m the baseline's median count.

    Counts of independent stories are Poisson, and a Poisson count's upper tail is heavier than
    a normal one's at small means: with a floor of √m, a median of 3 stories crosses z 3.5 at
    9 stories, which Poisson noise alone reaches about once in 270 windows. This floor puts
    the threshold where the count's variance-stabilised form (Anscombe: 2√(x + 3/8)) is
    `threshold` above the median's, so noise alone crosses it about as rarely as a normal
    variable crosses `threshold` sigmas."""
    metric = settings.metric
    median_count = statistics.median(w.count(metric) for w in baseline)
    stories = settings.min_spread_stories * (
        math.sqrt(median_count + 3 / 8) + settings.threshold / 4
    )
    if metric == "share":  # one story moves the window's share by 1 / its stories
        readable = window.all_stories or statistics.median(w.all_stories for w in baseline)
        return stories / max(readable, 1)
    if metric == "score_sum":  # one story moves it by a typical story's score
        counted = sum(w.tension_stories for w in baseline)
        per_story = sum(w.score_sum for w in baseline) / counted if counted else 1.0
        return stories * max(per_story, 1.0)
    return stories


def severity_of(z: float, settings: AlertSettings) -> str:
    if z >= settings.critical:
        return "critical"
    if z >= settings.high:
        return "high"
    return "elevated"


def advance(state: TopicState, verdict: Verdict, settings: AlertSettings) -> Decision:
    """The topic's state after one more judged window, and whether it is an alert."""
    window = verdict.window
    if verdict.reason in (PARTIAL_COVERAGE, WARMING_UP):  # unknown: neither hot nor calm
        return Decision(verdict, False, verdict.reason, state)
    if not verdict.hot:
        if state.severity is None:
            return Decision(verdict, False, verdict.reason, state)
        # Back to normal once no window, of any width, has been hot for clear_after_hours:
        # a calm day does not end a spike whose last six hours were hot.
        hot_until = state.last_hot_at or state.elevated_since or window.start
        if window.end - hot_until >= timedelta(hours=settings.clear_after_hours):
            back = replace(state, severity=None, elevated_since=None, last_hot_at=None)
            return Decision(verdict, False, "back to normal", back)
        return Decision(verdict, False, verdict.reason, state)
    severity = verdict.severity
    assert severity is not None
    hot_until = max(window.end, state.last_hot_at or window.end)
    if state.severity is not None:  # elevated already: only a rise in severity is news
        if SEVERITIES.index(severity) > SEVERITIES.index(state.severity):
            raised = replace(state, severity=severity, last_alert_at=window.end,
                             last_hot_at=hot_until)  # fmt: skip
            return Decision(verdict, True, "severity rose", raised)
        return Decision(verdict, False, "still elevated", replace(state, last_hot_at=hot_until))
    elevated = replace(state, severity=severity, elevated_since=window.end, last_hot_at=hot_until)
    cooldown = timedelta(hours=settings.cooldown_hours)
    if state.last_alert_at is not None and window.end - state.last_alert_at < cooldown:
        return Decision(verdict, False, "cooldown", elevated)
    return Decision(verdict, True, "new spike", replace(elevated, last_alert_at=window.end))


def replay(
    windows: Iterable[Window],
    settings: AlertSettings,
    states: dict[str, TopicState] | None = None,
    judged: Callable[[Window], bool] | None = None,
) -> list[Decision]:
    """Judge the windows in the order they close (shorter first at the same end), each as if
    it had just closed, against the windows before it; the elevated state and the cooldown
    carry across windows as in live monitoring. `judged` picks the windows to judge (default
    all); the others are baseline only. Returns a decision per judged window; `states` is
    updated in place."""
    ordered = sorted(windows, key=lambda w: (w.end, w.end - w.start, w.topic))
    states = {} if states is None else states
    history: dict[str, list[Window]] = {}
    decisions = []
    for window in ordered:
        seen = history.setdefault(window.topic, [])
        if judged is None or judged(window):
            verdict = judge(window, seen, settings)
            state = states.get(window.topic) or TopicState(window.topic)
            decision = advance(state, verdict, settings)
            states[window.topic] = decision.state
            decisions.append(decision)
        seen.append(window)
    return decisions
