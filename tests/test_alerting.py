"""Spike alerts on a real DuckDB file: windows read by sql/alerts.sql from stories stored by the
cycle's own storage path (Store.store_cycle), the backtest, and backfilled stories."""

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tensionwatch.alerting import backtest, latest_verdicts, read_windows
from tensionwatch.cli import main
from tensionwatch.detect import PARTIAL_COVERAGE, replay
from tensionwatch.store import Store
from tests.alert_history import NOW, SIX, START, TODAY, History


def test_a_backtest_finds_the_spike_once_with_its_top_events(history):
    spike = NOW
    history.keep([(spike, 15), *history.quiet(spike + SIX, 7)])
    found = backtest(history.store, history.config, since=START + timedelta(days=21))
    assert [(a.decision.verdict.window.start, a.decision.verdict.window.hours) for a in found] == [
        (spike, 6)
    ]  # the day holding it is the same spike, still elevated: no second alert
    (alert,) = found
    assert alert.decision.verdict.window.topic == "iran_israel"
    assert alert.decision.verdict.z >= 3.5 and alert.decision.verdict.severity
    assert len(alert.top_events) == 5
    assert all(e["title"].startswith("Iran warns Israel") and e["outlets"] == 1
               for e in alert.top_events)  # fmt: skip
    assert "missile" in alert.top_events[0]["terms"] or alert.top_events[0]["terms"]


def test_a_window_most_feeds_failed_in_raises_no_spike(history):
    at = NOW
    history.keep([(at, 15)], feeds=("wire",), failed=("daily", "evening"))
    assert backtest(history.store, history.config, since=START + timedelta(days=21)) == []
    with history.store.reading() as con:
        (window,) = [w for w in read_windows(con, history.config.alerts, at, at + SIX)
                     if w.topic == "iran_israel"]  # fmt: skip
    assert window.coverage == pytest.approx(1 / 3) and window.tension_stories == 15


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    backfill=st.lists(
        st.tuples(st.integers(1, 30 * 4), st.integers(0, 12), st.integers(0, 30)),
        min_size=1,
        max_size=4,
    )  # fmt: skip
)
def test_backfilled_old_stories_change_no_window_and_raise_no_alert_now(
    history, tmp_path_factory, backfill
):
    # A feed added with its archive: stories of old windows, first seen now. Read as each
    # window stood when it closed, no window's figures change, so no verdict does either.
    # Each example starts from the stored history again.
    copy = tmp_path_factory.mktemp("copy") / "tw.duckdb"
    shutil.copy(history.config.database_path, copy)
    store = Store(copy)
    settings_ = history.config.alerts
    with store.reading() as con:
        before = read_windows(con, settings_, START, NOW, known_within=timedelta(minutes=30))
    later = NOW + timedelta(hours=1)  # the old windows closed more than 30 minutes ago
    old = [(NOW - back * SIX, tension) for back, tension, _ in backfill]
    for (start, tension), (_, _, filler) in zip(old, backfill, strict=True):
        store.store_cycle(
            history.config,
            history.batch([(start, tension)], filler, feeds=("wire",), seen=later, polled=False),
        )
    with store.reading() as con:
        after = read_windows(con, settings_, START, NOW, known_within=timedelta(minutes=30))
        everything = read_windows(con, settings_, START, NOW)
    assert after == before
    assert [d.alert for d in replay(after, settings_)] == [
        d.alert for d in replay(before, settings_)
    ]
    if any(t + f for _, t, f in backfill):  # read with every story, the old windows did change
        assert everything != before


def test_alerts_backtest_prints_each_alert_with_its_stories(history, capsys):
    history.keep([(NOW, 15), *history.quiet(NOW + SIX, 3)])
    config = str(history.config.base_dir / "config.yaml")
    since = (START + timedelta(days=21)).date().isoformat()
    assert (
        main(["alerts", "--config", config, "backtest", "--since", since, "--format", "json"]) == 0
    )
    (line,) = capsys.readouterr().out.splitlines()
    alert = json.loads(line)
    assert alert["topic"] == "iran_israel" and alert["kind"] == "spike"
    assert alert["window_start"] == NOW.isoformat() and alert["z"] >= 3.5
    assert [e["outlets"] for e in alert["top_stories"]] == [1] * 5
    assert main(["alerts", "backtest", "--config", config, "--since", since]) == 0
    out = capsys.readouterr().out
    assert "Alerts per month" in out and "Iran warns Israel" in out
    assert main(["alerts", "backtest", "--config", config, "--since", since, "--until", since]) == 2


def test_alerts_says_when_a_topic_is_still_warming_up(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # one table row per line
    h = History(tmp_path)
    now = datetime.now(UTC)
    latest_end = TODAY + (now - TODAY) // SIX * SIX
    h.keep(h.quiet(latest_end - 8 * SIX, 8))  # eight six-hour windows up to the latest
    config = str(tmp_path / "config.yaml")
    assert main(["alerts", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "warming up: 7 of 20 windows" in out  # the latest window against the seven before
    # Six hours later with no cycle: the latest window is not calm but unknown.
    later = latest_verdicts(h.store, h.config, now=latest_end + SIX + timedelta(minutes=5))
    (six_hours,) = [v for v in later if v.window.topic == "iran_israel" and v.window.hours == 6]
    assert six_hours.reason == PARTIAL_COVERAGE and six_hours.window.coverage is None
    assert six_hours.window.end == latest_end + SIX
