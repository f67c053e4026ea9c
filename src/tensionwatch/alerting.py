"""Spike alerts between the database and detect.py: the windows of each topic read from
DuckDB (sql/alerts.sql), the backtest over stored history, and the top events of a window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import duckdb

from tensionwatch.config import AlertSettings, Config
from tensionwatch.detect import Decision, Verdict, Window, judge, replay
from tensionwatch.store import Store, load_statements, rows_as_dicts, sql_dir

SQL = load_statements(sql_dir() / "alerts.sql")
TOP_EVENTS = 5


@dataclass(frozen=True, slots=True)
class BacktestAlert:
    decision: Decision
    top_events: list[dict[str, Any]]


def read_windows(
    con: duckdb.DuckDBPyConnection,
    settings: AlertSettings,
    since: datetime,
    until: datetime,
    known_within: timedelta | None = None,
) -> list[Window]:
    """Every complete window of every topic in [since, until) (see sql/alerts.sql)."""
    rows = con.execute(
        SQL["windows"],
        {
            "hours": list(settings.windows_hours),
            "since": since,
            "until": until,
            "known_within_seconds": None if known_within is None else known_within.total_seconds(),
        },
    ).fetchall()
    return [
        Window(topic, start, end, tension, readable, events, float(score_sum), outlets, coverage)
        for topic, _, start, end, tension, readable, events, score_sum, outlets, coverage in rows
    ]


def top_events(
    con: duckdb.DuckDBPyConnection, window: Window, limit: int = TOP_EVENTS
) -> list[dict[str, Any]]:
    return rows_as_dicts(
        con.execute(
            SQL["top_events"],
            {"topic": window.topic, "start": window.start, "end": window.end, "limit": limit},
        )
    )


def history_needed(settings: AlertSettings) -> timedelta:
    """How far before a window its baseline can reach."""
    return timedelta(days=max(settings.baseline_days, 7 * settings.seasonal_weeks))


def backtest(
    store: Store, config: Config, since: datetime, until: datetime | None = None
) -> list[BacktestAlert]:
    """The alerts the detector would have raised for the windows that closed in
    (since, until], each judged as if it had just closed, with the elevated state and the
    cooldown carried from window to window (from the baseline's reach before `since` on).
    Windows are read with every story stored now, wherever it came from."""
    settings = config.alerts
    until = until or datetime.now(UTC)
    start = _midnight(since - history_needed(settings))
    with store.reading() as con:
        windows = read_windows(con, settings, start, until)
        decisions = [
            d for d in replay(windows, settings) if d.alert and d.verdict.window.end > since
        ]
        return [BacktestAlert(d, top_events(con, d.verdict.window)) for d in decisions]


def latest_verdicts(store: Store, config: Config, now: datetime | None = None) -> list[Verdict]:
    """Each topic's latest complete window of each width, judged now against the windows
    before it. Every window is read as it stood as long after its close as the latest one is
    now, so stories first seen since (backfilled into old windows) change nothing."""
    settings = config.alerts
    now = now or datetime.now(UTC)
    verdicts = []
    with store.reading() as con:
        for hours in settings.windows_hours:
            width = timedelta(hours=hours)
            latest_end = _midnight(now) + (now - _midnight(now)) // width * width
            since = _midnight(latest_end - width - history_needed(settings))
            windows = read_windows(
                con, settings.model_copy(update={"windows_hours": [hours]}), since,
                latest_end, known_within=now - latest_end,
            )  # fmt: skip
            for topic in sorted(config.topics):
                mine = [w for w in windows if w.topic == topic]
                latest = max(mine, key=lambda w: w.end, default=None)
                if latest is None or latest.end < latest_end:  # nobody polled: not calm
                    latest = Window(topic, latest_end - width, latest_end, 0, 0, 0, 0.0, 0, None)
                verdicts.append(judge(latest, mine, settings))
    return verdicts


def _midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date(), time(0), tzinfo=UTC)
