"""Spike alerts between the database and detect.py: the windows of each topic read from
DuckDB (sql/alerts.sql), the backtest over stored history, the top events of a window, and
the monitor step that ends each cycle: judge the windows closed since the last cycle, record
each alert once in the `alerts` outbox with a delivery row per destination, and deliver.

Delivery is at most once per destination: a delivery is marked 'sending' and committed before
the message leaves, and a delivery found 'sending' later (the process stopped mid-send) is
marked 'interrupted', never sent again. A failed delivery stays 'pending' and is retried by
later cycles, waiting retry_minutes, doubled each time, until give_up_hours after detection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import duckdb

from tensionwatch.config import AlertSettings, Config
from tensionwatch.delivery import send
from tensionwatch.detect import Decision, TopicState, Verdict, Window, judge, replay
from tensionwatch.messages import compose, compose_feed_gone, compose_health
from tensionwatch.store import Store, bulk_columns, load_statements, rows_as_dicts, sql_dir

SQL = load_statements(sql_dir() / "alerts.sql")
TOP_EVENTS = 5
HEALTH = ""  # the alert_states row of the pipeline's health


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
    return timedelta(days=settings.history_days)


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
    before it: those the detector kept as they stood when it read them, the others read now
    (as they stand as long after their close as the latest one is now)."""
    settings = config.alerts
    now = now or datetime.now(UTC)
    latest_end = _latest_end(settings, now)
    since = _midnight(latest_end - timedelta(days=1) - history_needed(settings))
    with store.reading() as con:
        windows, _ = current_windows(con, config, since, latest_end, now)
    verdicts = []
    for topic in sorted(config.topics):
        for hours in settings.windows_hours:
            mine = [w for w in windows if w.topic == topic and w.hours == hours]
            if mine:
                latest = max(mine, key=lambda w: w.end)
                verdicts.append(judge(latest, mine, settings))
    return verdicts


def _latest_end(settings: AlertSettings, now: datetime) -> datetime:
    """The end of the latest complete window of any width: every window that has closed by
    `now` ends at or before it (with widths 8 and 12 h at 13:00, 12:00, not 08:00)."""
    return max(_closed_by(now, hours) for hours in settings.windows_hours)


def _closed_by(now: datetime, hours: float) -> datetime:
    """The end of the latest window of this width that has closed by `now`."""
    width = timedelta(hours=hours)
    return _midnight(now) + (now - _midnight(now)) // width * width


def current_windows(
    con: duckdb.DuckDBPyConnection, config: Config, since: datetime, until: datetime,
    now: datetime,
) -> tuple[list[Window], list[Window]]:  # fmt: skip
    """Every window of every topic and width in [since, until) (`since` at midnight): the
    ones kept in `alert_windows` as they stood when first read, the others read now, as they
    stand `now - until` after the latest closed, a window with nothing in it as zeros with
    coverage NULL. Returns (all of them, those read now): a cycle keeps the latter."""
    settings = config.alerts
    try:
        rows = con.execute(SQL["kept_windows"], {"since": since, "until": until}).fetchall()
    except duckdb.CatalogException:  # a read copy from before migration 008: nothing kept
        rows = []
    kept = [
        Window(topic, start, end, tension, readable, events, score_sum, outlets, coverage)
        for topic, _, start, end, tension, readable, events, score_sum, outlets, coverage in rows
    ]
    have = {(w.topic, w.start, w.hours) for w in kept}
    slots = [
        (topic, start, hours)
        for hours in settings.windows_hours
        for start in _starts(since, until, timedelta(hours=hours))
        for topic in config.topics
    ]
    missing = [slot for slot in slots if slot not in have]
    if not missing:
        return kept, []
    first = _midnight(min(start for _, start, _ in missing))
    # As long after its close as the latest window of the shortest width is now: a longer
    # window that closed later reads as long after, or a little longer.
    lag = now - _closed_by(now, min(settings.windows_hours))
    read = {
        (w.topic, w.start, w.hours): w
        for w in read_windows(con, settings, first, until, known_within=lag)
    }
    fresh = [
        read.get((topic, start, hours))
        or Window(topic, start, start + timedelta(hours=hours), 0, 0, 0, 0.0, 0, None)
        for topic, start, hours in missing
    ]
    return kept + fresh, fresh


def _starts(since: datetime, until: datetime, width: timedelta) -> list[datetime]:
    """The starts of the complete windows of this width in [since, until)."""
    count = (until - since) // width
    return [since + i * width for i in range(count)]


def _midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date(), time(0), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Delivery:
    alert_id: str
    destination: str
    state: str  # 'sent', 'pending' (tried again later), 'failed' (given up), 'interrupted'
    error: str | None = None


@dataclass(frozen=True, slots=True)
class MonitorReport:
    decisions: list[Decision]  # the windows judged this cycle
    alerts: list[dict[str, Any]]  # the alerts raised this cycle (spike and health)
    deliveries: list[Delivery] = field(default_factory=list)
    dry_run: bool = False


def monitor(
    store: Store,
    config: Config,
    run_id: str | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> MonitorReport:
    """The end of a cycle: judge every window closed since the last cycle, record the alerts
    (once each), then deliver what is due. `dry_run` judges and composes, records and sends
    nothing."""
    now = now or datetime.now(UTC)
    with store.connect() as con:
        store.migrate(con)
        states = {
            row[0]: row for row in con.execute(SQL["load_states"]).fetchall()
        }  # topic → (topic, severity, elevated_since, last_alert_at, last_hot_at, judged_until)
        topic_states = {t: TopicState(t, *states[t][1:5]) for t in config.topics if t in states}
        decisions, fresh = _judge_new_windows(con, config, topic_states, states, now)
        alerts = [_spike_record(con, config, d, now) for d in decisions if d.alert]
        health_alert, health_state = _health(con, config, states.get(HEALTH), now)
        if health_alert:
            alerts.append(health_alert)
        alerts += _feeds_gone(con, config, now)
        if dry_run:
            return MonitorReport(decisions, alerts, dry_run=True)
        con.execute("BEGIN TRANSACTION")
        try:
            for topic in config.topics:
                state = topic_states.get(topic) or TopicState(topic)
                _save_state(con, state, now, judged_until=now)
            _save_state(con, TopicState(HEALTH, health_state), now, judged_until=now)
            if fresh:
                _keep_windows(con, fresh, now)
            _record(con, config, alerts, now, run_id)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        deliveries = deliver(con, config, now)
        changed = bool(alerts or deliveries)
        if store.read_copy and changed:
            con.execute("CHECKPOINT")  # the whole database in the file, for the read copy
    _publish(store, changed)
    return MonitorReport(decisions, alerts, deliveries)


def watchdog(store: Store, config: Config, now: datetime | None = None) -> MonitorReport:
    """Run beside the schedule (cron, a Prefect schedule): when no cycle has been stored for
    alerts.stalled_hours, raise a health alert once (the next stored cycle clears it), and in
    any case deliver what is due, so retries do not wait for a cycle."""
    now = now or datetime.now(UTC)
    with store.connect() as con:
        store.migrate(con)
        ((last,),) = con.execute(SQL["last_stored_at"]).fetchall()
        states = {row[0]: row for row in con.execute(SQL["load_states"]).fetchall()}
        health = states.get(HEALTH)
        alerts = []
        stalled = last is not None and now - last >= timedelta(hours=config.alerts.stalled_hours)
        if stalled and not (health and health[1] == "stalled"):
            hours = (now - last).total_seconds() / 3600
            why = f"no cycle has been stored for {hours:.1f} h (the last at {last:%Y-%m-%d %H:%M} UTC)"
            alerts.append(_health_record("health", why, now))
            con.execute("BEGIN TRANSACTION")
            try:
                judged_until = health[5] if health else None
                _save_state(con, TopicState(HEALTH, "stalled"), now, judged_until=judged_until)
                _record(con, config, alerts, now, run_id=None)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        deliveries = deliver(con, config, now)
        changed = bool(alerts or deliveries)
        if store.read_copy and changed:
            con.execute("CHECKPOINT")
    _publish(store, changed)
    return MonitorReport([], alerts, deliveries)


def _publish(store: Store, changed: bool) -> None:
    """Refresh the read copy (the database closed and checkpointed) when the outbox changed,
    so `tensionwatch alerts` shows it now, not after the next cycle. A copy that cannot be
    made is no error here: the next cycle publishes one again."""
    if store.read_copy and changed:
        store.publish_read_copy([])


def _record(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    alerts: list[dict[str, Any]],
    now: datetime,
    run_id: str | None,
) -> None:
    """Record alerts (once each) with a delivery row per destination, inside the caller's
    transaction."""
    destinations = [d.name for d in config.alerts.destinations]
    for alert in alerts:
        late = alert.pop("late", False)
        con.execute(SQL["insert_alert"], {**alert, "now": now, "run_id": run_id})
        if destinations and not late:
            con.execute(
                SQL["insert_deliveries"],
                {"alert_id": alert["alert_id"], "destination": destinations, "now": now},
            )
    con.execute(SQL["update_alert_states"], {"alert_id": [a["alert_id"] for a in alerts]})


def deliver(con: duckdb.DuckDBPyConnection, config: Config, now: datetime) -> list[Delivery]:
    """Send every due delivery, each marked 'sending' (committed) before it leaves."""
    settings = config.alerts
    urls = {d.name: d.url for d in settings.destinations}
    outcomes = [
        Delivery(alert_id, destination, "interrupted", "stopped while sending")
        for alert_id, destination in con.execute(SQL["interrupted_sends"]).fetchall()
    ]
    outcomes += [
        Delivery(alert_id, destination, "failed", "no longer in config.yaml")
        for alert_id, destination in con.execute(
            SQL["forget_removed_destinations"], {"destinations": list(urls)}
        ).fetchall()
    ]
    due = con.execute(SQL["due_deliveries"], {"now": now, "destinations": list(urls)}).fetchall()
    for alert_id, destination, attempts, title, text, markdown, detected_at in due:
        key = {"alert_id": alert_id, "destination": destination}
        con.execute(SQL["mark_sending"], {**key, "now": now})  # committed: autocommit
        sent = send(urls[destination], title, text, markdown, settings.send_timeout_seconds)
        if sent.ok:
            con.execute(SQL["mark_sent"], {**key, "now": datetime.now(UTC)})
            outcomes.append(Delivery(alert_id, destination, "sent"))
            continue
        error = config.redact(sent.error) or "not delivered"
        wait = timedelta(minutes=settings.retry_minutes * 2**attempts)  # attempts before this
        give_up = detected_at + timedelta(hours=settings.give_up_hours)
        state = "failed" if now + wait > give_up else "pending"
        if sent.unsure:  # it may have arrived: at most once means not again
            state, error = "interrupted", f"no answer in time, not sent again ({error})"
        con.execute(
            SQL["mark_unsent"],
            {**key, "state": state, "error": error, "next_attempt_at": now + wait},
        )
        outcomes.append(Delivery(alert_id, destination, state, error))
    con.execute(SQL["update_alert_states"], {"alert_id": sorted({o.alert_id for o in outcomes})})
    return outcomes


def _judge_new_windows(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    topic_states: dict[str, TopicState],
    states: dict[str, tuple],
    now: datetime,
) -> tuple[list[Decision], list[Window]]:
    """Judge each topic's windows that closed since its last judging (the first time: the
    latest complete window of each width), in the order they closed, updating
    `topic_states`. Returns the decisions and the windows read now, to keep."""
    settings = config.alerts
    judged_until = {t: states[t][5] for t in config.topics if t in states and states[t][5]}
    latest_end = _latest_end(settings, now)
    longest = timedelta(hours=max(settings.windows_hours))
    first_end = min([*judged_until.values(), now - longest])
    since = _midnight(first_end - longest - history_needed(settings))
    windows, fresh = current_windows(con, config, since, latest_end, now)

    def new(window: Window) -> bool:
        last = judged_until.get(window.topic, now - (window.end - window.start))
        return window.end > last

    return replay(windows, settings, topic_states, judged=new), fresh


def _spike_record(
    con: duckdb.DuckDBPyConnection, config: Config, decision: Decision, now: datetime
) -> dict[str, Any]:
    """An alert's record; one found late (its window closed more than the longest window
    before now: the alert step failed or did not run for a while) is recorded, not sent:
    nobody should be paged at 3 a.m. for a spike of three days ago as if it were new."""
    v, w = decision.verdict, decision.verdict.window
    late = now - w.end > timedelta(hours=max(config.alerts.windows_hours))
    record: dict[str, Any] = {
        "alert_id": f"spike/{w.topic}/{v.metric}/{w.start:%Y-%m-%dT%H:%MZ}/{w.hours:g}h",
        "kind": "spike", "topic": w.topic, "window_start": w.start, "window_end": w.end,
        "window_hours": w.hours, "metric": v.metric, "severity": v.severity, "z": v.z,
        "value": v.value, "baseline_median": v.median, "baseline_windows": v.baseline_windows,
        "why": decision.why + (", found late: recorded, not sent" if late else ""),
        "top_events": top_events(con, w), "late": late,
    }  # fmt: skip
    title, text, markdown = compose(record, config.topics[w.topic].title)
    record |= {"title": title, "body_text": text, "body_markdown": markdown}
    record["top_events"] = json.dumps(record["top_events"], default=str, ensure_ascii=False)
    return record


def _health(
    con: duckdb.DuckDBPyConnection, config: Config, state: tuple | None, now: datetime
) -> tuple[dict[str, Any] | None, str | None]:
    """(the health alert this cycle raises, or None; the health state after it: 'blind' or
    None). Blind: at least failing_share of the feeds failed in each of the last
    failing_cycles stored cycles; cleared by the first cycle that is not."""
    settings = config.alerts
    runs = con.execute(SQL["latest_runs"], {"n": settings.failing_cycles}).fetchall()
    failing = [r for r in runs if r[1] and r[0] / r[1] >= settings.failing_share]
    blind_now = len(runs) == settings.failing_cycles and len(failing) == len(runs)
    was_blind = bool(state and state[1])
    if blind_now and not was_blind:
        failed, total, _ = runs[0]
        why = (
            f"{failed} of {total} feeds did not answer in the latest cycle, and at least "
            f"{settings.failing_share:.0%} of the feeds in each of the last "
            f"{settings.failing_cycles} cycles"
        )
        return _health_record("health", why, now), "blind"
    if was_blind and not blind_now:
        failed, total, _ = runs[0] if runs else (0, 0, None)
        why = f"cycles succeed again: {total - failed} of {total} feeds answered the latest"
        if state and state[1] == "stalled":
            why = f"cycles are stored again: {total - failed} of {total} feeds answered the latest"
        return _health_record("health_cleared", why, now), None
    return None, "blind" if blind_now else None


def _feeds_gone(
    con: duckdb.DuckDBPyConnection, config: Config, now: datetime
) -> list[dict[str, Any]]:
    """A health alert for each configured feed retired (410 Gone) at its configured address
    and not alerted yet: once per retirement (its key holds the time it was retired)."""
    addresses = {feed.name: feed.public_url for feed in config.feeds if feed.retire_when_gone}
    try:
        rows = con.execute(SQL["retired_feeds"], {"feed_id": list(addresses)}).fetchall()
    except duckdb.BinderException:  # a database from before 009: nothing is retired
        return []
    gone = {
        f"health/feed_gone/{feed_id}/{retired_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}": (
            feed_id,
            url,
            retired_at,
        )
        for feed_id, url, retired_at in rows
        if addresses.get(feed_id) == url
    }
    if not gone:
        return []
    known = {
        row[0] for row in con.execute(SQL["alerts_known"], {"alert_id": list(gone)}).fetchall()
    }
    alerts = []
    for alert_id, (feed_id, url, retired_at) in sorted(gone.items()):
        if alert_id in known:
            continue
        record = _health_record(
            "health", f"feed {feed_id} answered 410 Gone: retired until its url changes", now
        )
        title, text, markdown = compose_feed_gone(feed_id, url, retired_at)
        record |= {"alert_id": alert_id, "title": title, "body_text": text,
                   "body_markdown": markdown}  # fmt: skip
        alerts.append(record)
    return alerts


def _health_record(kind: str, why: str, now: datetime) -> dict[str, Any]:
    title, text, markdown = compose_health(kind, why)
    return {
        "alert_id": f"{kind}/{now:%Y-%m-%dT%H:%M:%SZ}", "kind": kind, "topic": HEALTH,
        "window_start": None, "window_end": now, "window_hours": None, "metric": None,
        "severity": None, "z": None, "value": None, "baseline_median": None,
        "baseline_windows": None, "why": why, "title": title, "body_text": text,
        "body_markdown": markdown, "top_events": None,
    }  # fmt: skip


def _save_state(
    con: duckdb.DuckDBPyConnection, state: TopicState, now: datetime, judged_until: datetime
) -> None:
    con.execute(
        SQL["save_state"],
        {
            "topic": state.topic, "severity": state.severity,
            "elevated_since": state.elevated_since, "last_alert_at": state.last_alert_at,
            "last_hot_at": state.last_hot_at, "judged_until": judged_until, "now": now,
        },
    )  # fmt: skip


def send_test(config: Config) -> list[Delivery]:
    """A test message to every destination, now, outside the outbox: each one's result."""
    title = "tensionwatch: test message"
    text = (
        "This is a test of tensionwatch's alert delivery. Spike alerts arrive here as they "
        "are detected."
    )
    outcomes = []
    for destination in config.alerts.destinations:
        sent = send(destination.url, title, text, text, config.alerts.send_timeout_seconds)
        outcomes.append(
            Delivery("test", destination.name, "sent" if sent.ok else "failed",
                     config.redact(sent.error))
        )  # fmt: skip
    return outcomes


def recent_alerts(store: Store, days: float) -> list[dict[str, Any]]:
    since = datetime.now(UTC) - timedelta(days=days)
    with store.reading() as con:
        try:
            return rows_as_dicts(con.execute(SQL["recent_alerts"], {"since": since}))
        except duckdb.CatalogException:  # a read copy from before migration 008: no alerts
            return []


def _keep_windows(con: duckdb.DuckDBPyConnection, windows: list[Window], now: datetime) -> None:
    con.execute(SQL["keep_windows"], bulk_columns(windows, extra={"now": now}))
