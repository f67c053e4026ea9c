"""Alerts from detection to a person: the outbox in DuckDB, delivery through Apprise to real
receivers on 127.0.0.1 (json://, form://, mailto:// to aiosmtpd), retries, at most once per
destination even across a kill, escaping of story text, secrets kept out, health alerts."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from tensionwatch.alerting import monitor, read_windows, watchdog
from tensionwatch.cli import main
from tensionwatch.detect import judge
from tests.alert_history import NOW, SIX, START, copy_of
from tests.receivers import SmtpReceiver, WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
AFTER = NOW + SIX + timedelta(minutes=5)  # the first cycle after the spike's window closed


@pytest.fixture
def hook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp():
    receiver = SmtpReceiver()
    yield receiver
    receiver.stop()


def with_destinations(stored, tmp_path, *urls, **alerts):
    destinations = [{"name": f"dest{i}", "url": url} for i, url in enumerate(urls)]
    return copy_of(stored, tmp_path, alerts={"destinations": destinations, **alerts})


def deliveries(history):
    with duckdb.connect(str(history.config.database_path), read_only=True) as con:
        return con.execute(
            "SELECT destination, state, attempts, last_error FROM alert_deliveries ORDER BY 1"
        ).fetchall()


def alert_state(history):
    with duckdb.connect(str(history.config.database_path), read_only=True) as con:
        return [row[0] for row in con.execute("SELECT state FROM alerts").fetchall()]


def test_a_spike_reaches_json_form_and_mail_once_with_what_an_analyst_needs(
    stored_history, tmp_path, hook, smtp
):
    h = with_destinations(stored_history, tmp_path, hook.url("json"), hook.url("form", "/form"),
                          smtp.url())  # fmt: skip
    h.keep([(NOW, 15)])
    report = monitor(h.store, h.config, "run-x", now=AFTER)
    assert [a["kind"] for a in report.alerts] == ["spike"]
    assert [d.state for d in report.deliveries] == ["sent"] * 3
    posted = {r.path: r for r in hook.received}
    assert set(posted) == {"/hook", "/form"}
    message = json.loads(posted["/hook"].body)
    assert message["title"].startswith("tensionwatch: Iran") and "spike" in message["title"]
    body = message["message"]
    window = f"{NOW:%Y-%m-%d %H:%M} to {NOW + SIX:%H:%M} UTC (6 h)"
    assert window in body and "iran_israel" in body
    assert "against a baseline median of" in body and " z " in body
    assert body.count("Iran warns Israel of missile strikes") == 5  # the top five events
    assert "https://x.test/" in body and "score 16.5" in body
    assert posted["/form"].form["message"] == body
    (mail,) = smtp.messages
    assert mail["Subject"] == message["title"]
    # Later cycles send none of it again.
    monitor(h.store, h.config, "run-y", now=AFTER + timedelta(minutes=15))
    assert len(hook.received) == 2 and len(smtp.messages) == 1
    assert [s for _, s, _, _ in deliveries(h)] == ["sent"] * 3


def test_a_receiver_down_for_two_cycles_gets_the_alert_once_on_the_third(
    stored_history, tmp_path, hook
):
    h = with_destinations(stored_history, tmp_path, hook.url("json"), retry_minutes=10)
    h.keep([(NOW, 15)])
    hook.status = 503
    first = monitor(h.store, h.config, now=AFTER)
    assert [(d.state, "503" in (d.error or "") or "error" in (d.error or "").lower())
            for d in first.deliveries] == [("pending", True)]  # fmt: skip
    monitor(h.store, h.config, now=AFTER + timedelta(minutes=15))  # waits 10 min, then tries
    assert deliveries(h)[0][1:3] == ("pending", 2) and alert_state(h) == ["pending"]
    hook.status = 200
    monitor(h.store, h.config, now=AFTER + timedelta(minutes=30))  # not yet due (20 min)
    assert deliveries(h)[0][1:3] == ("pending", 2)
    third = monitor(h.store, h.config, now=AFTER + timedelta(minutes=40))
    assert [d.state for d in third.deliveries] == ["sent"]
    assert len(hook.received) == 3  # two refused, one delivered
    monitor(h.store, h.config, now=AFTER + timedelta(hours=1))
    assert len(hook.received) == 3 and deliveries(h)[0][1:3] == ("sent", 3)
    assert alert_state(h) == ["sent"]


def test_a_delivery_still_failing_at_the_give_up_age_is_failed_not_retried(
    stored_history, tmp_path, hook
):
    h = with_destinations(stored_history, tmp_path, hook.url("json"), retry_minutes=30,
                          give_up_hours=1)  # fmt: skip
    h.keep([(NOW, 15)])
    hook.status = 500
    monitor(h.store, h.config, now=AFTER)
    monitor(h.store, h.config, now=AFTER + timedelta(minutes=31))
    assert deliveries(h)[0][1] == "failed"  # the next try would be past an hour
    hook.status = 200
    monitor(h.store, h.config, now=AFTER + timedelta(hours=3))
    assert len(hook.received) == 2 and deliveries(h)[0][1] == "failed"
    assert alert_state(h) == ["failed"]


KILLED_CHILD = """
import sys
from datetime import datetime
from tensionwatch.alerting import monitor, read_windows, watchdog
from tensionwatch.config import load_config
from tensionwatch.store import Store
config = load_config(sys.argv[1])
monitor(Store.from_config(config), config, now=datetime.fromisoformat(sys.argv[2]))
"""


def test_killed_between_sending_and_sent_the_alert_is_never_sent_twice(
    stored_history, tmp_path, hook
):
    h = with_destinations(stored_history, tmp_path, hook.url("json"))
    h.keep([(NOW, 15)])
    hook.delay = 30  # the message arrives; the answer never does before the kill
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_CHILD),
         str(h.config.base_dir / "config.yaml"), AFTER.isoformat()],
        cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    try:
        assert hook.arrived.wait(60), "the child never sent"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    hook.delay = 0
    assert deliveries(h)[0][1:3] == ("sending", 1)
    report = monitor(h.store, h.config, now=AFTER + timedelta(minutes=15))
    assert [(d.state, d.destination) for d in report.deliveries] == [("interrupted", "dest0")]
    monitor(h.store, h.config, now=AFTER + timedelta(minutes=30))
    assert len(hook.received) == 1
    assert deliveries(h)[0][1] == "interrupted" and alert_state(h) == ["failed"]


def test_story_text_cannot_forge_links_markup_or_mentions(stored_history, tmp_path, hook, smtp):
    h = with_destinations(stored_history, tmp_path, hook.url("json"), smtp.url())
    h.keep([(NOW, 15)])
    hostile = (
        "Iran warns Israel [click here](https://evil.test/x) <b>bold</b> <a href='https://"
        "evil.test'>a</a> @channel <!here> <@&1234> \u202egnp.exe\n2. forged line"
    )
    with duckdb.connect(str(h.config.database_path)) as con:
        con.execute(
            "UPDATE stories SET title = ?, url = 'javascript:alert(1)' WHERE story_id = ("
            "SELECT story_id FROM story_scores WHERE topic = 'iran_israel' AND relevant"
            " AND event_at >= ? ORDER BY event_at LIMIT 1)",
            [hostile, NOW],
        )
    monitor(h.store, h.config, now=AFTER)
    body = json.loads(hook.received[0].body)["message"]
    assert "@\u200bchannel" in body and "@channel" not in body
    assert "javascript:" not in body and "\n2. forged line" not in body
    # Text services may render Markdown and chat syntax all the same (Discord, Mattermost).
    assert "](" not in body and "<!here>" not in body and "<@&" not in body
    assert "\u202e" not in body
    (mail,) = smtp.messages
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html")
    html = html.get_payload(decode=True).decode()
    assert "<b>bold</b>" not in html and "<a href='https://evil.test'" not in html
    assert 'href="https://evil.test' not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "@\u200bchannel" in html


def test_secrets_in_a_destination_never_reach_the_database_or_the_output(
    stored_history, tmp_path, hook, capsys, monkeypatch
):
    monkeypatch.setenv("TW_HOOK_TOKEN", "tok-5ecret-value")
    h = with_destinations(stored_history, tmp_path,
                          hook.url("json", "/hook/${TW_HOOK_TOKEN}"))  # fmt: skip
    hook.stop()  # unreachable: the error names the address
    h.keep([(NOW, 15)])
    report = monitor(h.store, h.config, now=AFTER)
    assert report.deliveries[0].state == "pending"
    config = str(h.config.base_dir / "config.yaml")
    assert main(["alerts", "--config", config, "--days", "100"]) == 0
    assert main(["alerts", "--config", config, "--test"]) == 1
    out = capsys.readouterr()
    with duckdb.connect(str(h.config.database_path), read_only=True) as con:
        dump = str(con.execute("SELECT * FROM alerts").fetchall())
        dump += str(con.execute("SELECT * FROM alert_deliveries").fetchall())
    for text in (dump, out.out, out.err):
        assert "tok-5ecret-value" not in text
    assert "dest0: failed" in out.out


def test_alerts_test_reports_each_destination(stored_history, tmp_path, hook, capsys):
    h = with_destinations(stored_history, tmp_path, hook.url("json"), "json://127.0.0.1:1/x")
    assert main(["alerts", "--config", str(h.config.base_dir / "config.yaml"), "--test"]) == 1
    out = capsys.readouterr().out
    assert "dest0: sent" in out and "dest1: failed" in out
    assert json.loads(hook.received[0].body)["title"] == "tensionwatch: test message"


def test_dry_run_detects_but_records_and_sends_nothing(stored_history, tmp_path, hook):
    h = with_destinations(stored_history, tmp_path, hook.url("json"))
    h.keep([(NOW, 15)])
    report = monitor(h.store, h.config, now=AFTER, dry_run=True)
    assert [a["kind"] for a in report.alerts] == ["spike"] and report.dry_run
    assert hook.received == [] and deliveries(h) == []
    assert len(monitor(h.store, h.config, now=AFTER).alerts) == 1  # still new for a real run
    assert alert_state(h) == ["sent"]


def test_a_pipeline_gone_blind_alerts_once_then_says_it_is_back(stored_history, tmp_path, hook):
    h = with_destinations(stored_history, tmp_path, hook.url("json"))
    at = NOW
    for i in range(3):  # two of three feeds fail three cycles in a row
        h.keep([(at + i * SIX, 1)], feeds=("wire",), failed=("daily", "evening"))
        report = monitor(h.store, h.config, now=at + (i + 1) * SIX + timedelta(minutes=5))
        kinds = [a["kind"] for a in report.alerts]
        assert kinds == ([] if i < 2 else ["health"])  # no spike from a half-blind window
    h.keep([(at + 3 * SIX, 1)], failed=("daily", "evening"))
    assert monitor(h.store, h.config, now=at + 4 * SIX + timedelta(minutes=5)).alerts == []
    h.keep([(at + 4 * SIX, 1)])
    back = monitor(h.store, h.config, now=at + 5 * SIX + timedelta(minutes=5))
    assert [a["kind"] for a in back.alerts] == ["health_cleared"]
    titles = [json.loads(r.body)["title"] for r in hook.received]
    assert titles == ["tensionwatch: the pipeline is blind", "tensionwatch: the pipeline is back"]


def test_each_cycle_reads_only_the_windows_closed_since_the_last(history):
    def kept():
        with duckdb.connect(str(history.config.database_path), read_only=True) as con:
            return con.execute("SELECT count(*) FROM alert_windows").fetchone()[0]

    monitor(history.store, history.config, now=AFTER)
    first = kept()  # the baseline's windows, read once: eight weeks and more of both widths
    assert first >= 2 * (56 * 4 + 56)
    history.keep([(NOW + SIX, 2)])
    second = monitor(history.store, history.config, now=AFTER + SIX)
    assert kept() - first == 2  # one new six-hour window per topic, nothing else read again
    # The same verdict as reading every window from the stories now (nothing was backfilled).
    with history.store.reading() as con:
        everything = [
            w
            for w in read_windows(con, history.config.alerts, START, NOW + 2 * SIX)
            if w.topic == "iran_israel"
        ]
    (decision,) = [d for d in second.decisions if d.verdict.window.topic == "iran_israel"]
    again = judge(decision.verdict.window, everything, history.config.alerts)
    assert (again.z, again.median, again.reason) == (
        decision.verdict.z, decision.verdict.median, decision.verdict.reason
    )  # fmt: skip


def test_a_stalled_pipeline_is_told_by_the_watchdog_once_and_cleared_by_the_next_cycle(
    stored_history, tmp_path, hook, capsys
):
    h = with_destinations(stored_history, tmp_path, hook.url("json"), stalled_hours=2)
    config = str(h.config.base_dir / "config.yaml")
    assert main(["alerts", "--config", config, "--watchdog"]) == 0  # cycles are recent: quiet
    assert hook.received == [] and "Alerts: none" in capsys.readouterr().out
    with duckdb.connect(str(h.config.database_path), read_only=True) as con:
        ((last,),) = con.execute("SELECT max(stored_at) FROM runs").fetchall()
    stalled = watchdog(h.store, h.config, now=last + timedelta(hours=3))
    assert [a["kind"] for a in stalled.alerts] == ["health"]
    assert [d.state for d in stalled.deliveries] == ["sent"]
    assert watchdog(h.store, h.config, now=last + timedelta(hours=4)).alerts == []  # once
    (message,) = [json.loads(r.body) for r in hook.received]
    assert message["title"] == "tensionwatch: the pipeline is blind"
    assert "no cycle has been stored for 3.0 h" in message["message"]
    h.keep([(NOW, 1)])  # cycles run again
    back = monitor(h.store, h.config, now=last + timedelta(hours=5))
    assert [a["kind"] for a in back.alerts] == ["health_cleared"]
    assert "cycles are stored again" in json.loads(hook.received[-1].body)["message"]


def test_a_destination_that_answers_too_late_is_not_sent_the_alert_again(
    stored_history, tmp_path, hook
):
    # Apprise stops waiting, but the message arrived: retrying would send it twice.
    h = with_destinations(stored_history, tmp_path, hook.url("json"), send_timeout_seconds=1)
    h.keep([(NOW, 15)])
    hook.delay = 3
    first = monitor(h.store, h.config, now=AFTER)
    assert [d.state for d in first.deliveries] == ["interrupted"]
    hook.delay = 0
    monitor(h.store, h.config, now=AFTER + timedelta(hours=1))
    assert len(hook.received) == 1 and deliveries(h)[0][1] == "interrupted"


def test_windows_of_widths_that_close_at_other_times_are_each_judged_once(stored_history, tmp_path):
    h = copy_of(stored_history, tmp_path, alerts={"windows_hours": [8, 12]})
    judged = []
    for k in range(1, 13):  # a cycle every two hours for a day
        report = monitor(h.store, h.config, now=NOW + k * timedelta(hours=2, minutes=0)
                         + timedelta(minutes=5))  # fmt: skip
        judged += [(d.verdict.window.end - NOW, d.verdict.window.hours)
                   for d in report.decisions if d.verdict.window.topic == "iran_israel"]  # fmt: skip
    assert len(judged) == len(set(judged))
    hours = timedelta(hours=1)
    assert {(end, w) for end, w in judged if end > 2 * hours} == {
        (8 * hours, 8),
        (16 * hours, 8),
        (24 * hours, 8),
        (12 * hours, 12),
        (24 * hours, 12),
    }


def test_after_a_change_of_rules_the_old_figures_are_not_the_baseline(stored_history, tmp_path):
    from tensionwatch.rescoring import rescore
    from tests.conftest import default_topics

    h = copy_of(stored_history, tmp_path)
    monitor(h.store, h.config, now=AFTER)  # figures kept under the shipped rules
    topics = default_topics()
    topics["iran_israel"]["signals"].append({"term": "budget", "weight": 2})  # new rules
    (tmp_path / "changed").mkdir()
    changed = copy_of(stored_history, tmp_path / "changed", topics=topics)
    shutil.copy(h.config.database_path, changed.config.database_path)
    changed.keep([(NOW + SIX, 2)])  # a cycle under the new rules: older history is stale
    with duckdb.connect(str(changed.config.database_path)) as con:  # first used then, not now
        con.execute("UPDATE rule_versions SET first_used_at = ? WHERE is_current", [NOW + SIX])

    def verdict(history, now):
        report = monitor(history.store, history.config, now=now)
        (v,) = [d.verdict for d in report.decisions
                if d.verdict.window.topic == "iran_israel" and d.verdict.window.hours == 6]  # fmt: skip
        return v

    assert verdict(changed, AFTER + SIX).reason == "warming up"  # not the old rules' figures
    rescore(changed.store, changed.config, ["iran_israel"])
    changed.keep([(NOW + 2 * SIX, 2)])
    again = verdict(changed, AFTER + 2 * SIX)
    assert again.reason != "warming up" and again.baseline_windows > 100


def test_a_delivery_to_a_destination_removed_from_the_config_is_given_up_and_said(
    stored_history, tmp_path, hook
):
    h = with_destinations(stored_history, tmp_path, hook.url("json"))
    h.keep([(NOW, 15)])
    hook.status = 503
    monitor(h.store, h.config, now=AFTER)
    (tmp_path / "later").mkdir()
    later = copy_of(stored_history, tmp_path / "later", alerts={"destinations": []})
    shutil.copy(h.config.database_path, later.config.database_path)
    report = monitor(later.store, later.config, now=AFTER + timedelta(hours=1))
    assert [(d.destination, d.state) for d in report.deliveries] == [("dest0", "failed")]
    assert deliveries(later)[0][1::2] == ("failed", "the destination is no longer in config.yaml")


def test_a_spike_found_days_late_is_recorded_not_paged(stored_history, tmp_path, hook):
    h = with_destinations(stored_history, tmp_path, hook.url("json"))
    monitor(h.store, h.config, now=NOW + timedelta(minutes=5))  # judged up to NOW
    h.keep([(NOW, 15), *h.quiet(NOW + SIX, 11)])  # then the alert step does not run 3 days
    report = monitor(h.store, h.config, now=NOW + timedelta(days=3, minutes=5))
    assert [a["why"] for a in report.alerts] == ["new spike, found late: recorded, not sent"]
    assert hook.received == [] and report.deliveries == []
    assert alert_state(h) == ["detected"]
