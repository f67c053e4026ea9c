"""Polite, adaptive polling end to end: real cycles (as the flow runs them: only the feeds that
are due) against the feed server on 127.0.0.1 and a real DuckDB file. The server's request
log says which feed was asked when. Later cycles pass the time they run at (`now`) instead of
waiting for it; each feed's next due time is worked out from when it really answered.
"""

import hashlib
import io
import subprocess
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import duckdb
import pytest
import yaml
from rich.console import Console

from tensionwatch.alerting import monitor
from tensionwatch.cli import print_summary
from tensionwatch.config import load_config
from tensionwatch.cycle import new_batch, parse_and_score, poll_feeds
from tensionwatch.errors import DatabaseLockedError
from tensionwatch.store import Store, migrations
from tensionwatch.summary import summarise
from tests.conftest import old_database, write_config
from tests.feedserver import Route
from tests.test_storage_faults import child_command

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
TTL_FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- An RSS feed that asks to be cached for two hours (<ttl> is in minutes). -->
<rss version="2.0"><channel><title>Slow desk</title><ttl>120</ttl>
<item><title>Iran warns Israel after drone strike on depot</title>
<link>https://slow.example.org/a/1</link></item>
</channel></rss>"""


def cycle(config, at=None):
    """One cycle as the flow runs it, deciding at `at` (default: now) which feeds are due."""
    store = Store.from_config(config)
    results = poll_feeds(config, store.load_states(config), at)
    return store.store_cycle(config, parse_and_score(config, new_batch(config), results))


def query(config, sql, params=None):
    with duckdb.connect(str(config.database_path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def feed_row(config, feed_id):
    """(consecutive_failures, next_due_at, due_reason, last_fetched_at, retired_at, moved_to)"""
    (row,) = query(
        config,
        "SELECT consecutive_failures, next_due_at, due_reason, last_fetched_at, retired_at, "
        "moved_to FROM feeds WHERE feed_id = ?",
        [feed_id],
    )
    return row


def outcomes(config, report):
    rows = query(
        config, "SELECT feed_id, outcome FROM fetches WHERE run_id = ?", [report.batch.run_id]
    )
    return dict(rows)


def configure(tmp_path, server, feeds, **overrides):
    """A config whose feeds are {name: path or {url: path, other keys}} on `server`."""
    listed = []
    for name, spec in feeds.items():
        spec = {"url": spec} if isinstance(spec, str) else dict(spec)
        listed.append({"name": name, **spec, "url": server.url(spec["url"])})
    return load_config(write_config(tmp_path, listed, **overrides))


# --- backoff ------------------------------------------------------------------------------------


def test_a_failing_feed_backs_off_ever_longer_and_an_answer_resets_it(feed_server, tmp_path):
    feed_server.routes["/flaky.xml"] = Route(status=500)
    feed_server.routes["/world.xml"] = Route.file("world_rss20.xml")
    config = configure(
        tmp_path, feed_server, {"flaky": "/flaky.xml", "world": "/world.xml"}, fetch={"retries": 0}
    )
    t0 = datetime.now(UTC)
    cycle(config)
    waits = []
    for n, at in enumerate([t0 + 16 * MINUTE, t0 + 50 * MINUTE, t0 + 2 * HOUR], 1):
        failures, due, reason, fetched_at, _, _ = feed_row(config, "flaky")
        assert failures == n and reason == f"backoff after {n} failure{'s' * (n > 1)}"
        waits.append(due - fetched_at)
        # Before it is due it is not asked, and the cycle says it is waiting.
        asked = feed_server.count("/flaky.xml")
        early = cycle(config, fetched_at + waits[-1] / 2)
        assert feed_server.count("/flaky.xml") == asked
        assert outcomes(config, early)["flaky"] == "waiting"
        cycle(config, at)  # due by then: asked again, and failing again
        assert feed_server.count("/flaky.xml") == asked + 1
    for n, wait in enumerate(waits, 1):  # 15 min doubled per failure, up to a quarter shorter
        full = 15 * MINUTE * 2 ** (n - 1)
        assert 0.75 * full <= wait <= full + MINUTE, (n, wait)
    assert waits[0] < waits[1] < waits[2]

    feed_server.routes["/flaky.xml"] = Route.file("world_rss20.xml")  # the outlet fixes it
    cycle(config, t0 + 6 * HOUR)
    failures, due, reason, fetched_at, _, _ = feed_row(config, "flaky")
    assert failures == 0 and reason == "interval"
    assert 15 * MINUTE <= due - fetched_at < 16 * MINUTE  # from when it answered
    ((waiting, failed),) = query(config, "SELECT sum(feeds_waiting), sum(feeds_failed) FROM runs")
    assert (waiting, failed) == (3, 4)


def test_a_cycle_with_the_network_down_holds_no_failure_against_any_feed(tmp_path):
    import socket

    def closed_port():
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    feeds = [{"name": f"f{n}", "url": f"http://127.0.0.1:{closed_port()}/rss"} for n in range(2)]
    config = load_config(write_config(tmp_path, feeds, fetch={"retries": 0}))
    cycle(config)
    for name in ("f0", "f1"):
        failures, due, reason, fetched_at, _, _ = feed_row(config, name)
        assert (failures, reason) == (0, "network down")
        assert 15 * MINUTE <= due - fetched_at < 16 * MINUTE
    assert query(config, "SELECT feeds_failed FROM runs") == [(2,)]


# --- Retry-After --------------------------------------------------------------------------------


@pytest.mark.parametrize("status, form", [(429, "seconds"), (503, "http-date")])
def test_retry_after_keeps_the_feed_unasked_until_then_across_cycles(
    feed_server, tmp_path, status, form
):
    t0 = datetime.now(UTC)
    until = t0.replace(microsecond=0) + 2 * HOUR + 2 * MINUTE
    value = "7320" if form == "seconds" else format_datetime(until, usegmt=True)
    feed_server.routes["/busy.xml"] = Route(status=status, extra_headers={"Retry-After": value})
    config = configure(tmp_path, feed_server, {"busy": "/busy.xml"})
    cycle(config)
    # Two hours is longer than a cycle waits: asked once, not retried within the cycle.
    assert feed_server.count("/busy.xml") == 1
    _, due, reason, fetched_at, _, _ = feed_row(config, "busy")
    assert reason == "retry-after"
    assert until - 5 * MINUTE < due < until + 5 * MINUTE

    feed_server.routes["/busy.xml"] = Route.file("world_rss20.xml")
    for at in (t0 + HOUR, due - MINUTE):  # even a minute before it, when any other feed is due
        report = cycle(config, at)
        assert outcomes(config, report) == {"busy": "waiting"}
    assert feed_server.count("/busy.xml") == 1
    cycle(config, due)
    assert feed_server.count("/busy.xml") == 2
    assert feed_row(config, "busy")[:1] == (0,)


def test_a_retry_after_of_years_holds_the_feed_seven_days_and_garbage_is_a_plain_failure(
    feed_server, tmp_path
):
    feed_server.routes["/years.xml"] = Route(
        status=429, extra_headers={"Retry-After": "99999999999999999999"}
    )
    feed_server.routes["/garbled.xml"] = Route(status=503, extra_headers={"Retry-After": "soon"})
    config = configure(
        tmp_path, feed_server, {"years": "/years.xml", "garbled": "/garbled.xml"},
        fetch={"retries": 0},
    )  # fmt: skip
    cycle(config)
    _, due, reason, fetched_at, _, _ = feed_row(config, "years")
    assert reason == "retry-after"
    assert timedelta(days=7) <= due - fetched_at < timedelta(days=7, minutes=1)
    assert feed_row(config, "garbled")[2] == "backoff after 1 failure"
    cycle(config, fetched_at + timedelta(days=6, hours=23))
    assert feed_server.count("/years.xml") == 1
    cycle(config, due)
    assert feed_server.count("/years.xml") == 2


# --- 410 Gone -----------------------------------------------------------------------------------


def test_410_retires_a_feed_until_its_url_changes_with_one_health_alert(feed_server, tmp_path):
    feed_server.routes["/gone.xml"] = Route(status=410)
    feed_server.routes["/world.xml"] = Route.file("world_rss20.xml")
    config = configure(tmp_path, feed_server, {"desk": "/gone.xml", "world": "/world.xml"})
    first = cycle(config)
    (row,) = query(config, "SELECT status_code, error FROM fetches WHERE feed_id = 'desk'")
    assert row == (410, "HTTP 410 Gone")
    _, due, reason, _, retired_at, _ = feed_row(config, "desk")
    assert (due, reason) == (None, "gone") and retired_at is not None
    console = Console(file=io.StringIO(), width=200)
    print_summary(console, config, summarise(config, first))
    assert "desk: HTTP 410 Gone — retired (410 Gone): not asked again until its url changes" in (
        console.file.getvalue()
    )

    store = Store.from_config(config)
    raised = monitor(store, config, first.batch.run_id).alerts
    (gone,) = [a for a in raised if a["alert_id"].startswith("health/feed_gone/")]
    assert gone["kind"] == "health" and gone["title"] == "tensionwatch: feed desk is gone"
    assert "410 Gone" in gone["body_text"] and "config.yaml" in gone["body_text"]

    later = cycle(config, datetime.now(UTC) + timedelta(days=30))
    assert outcomes(config, later) == {"desk": "retired", "world": "unchanged"}
    assert feed_server.count("/gone.xml") == 1
    assert query(config, "SELECT feeds_retired FROM runs WHERE run_id = ?",
                 [later.batch.run_id]) == [(1,)]  # fmt: skip
    assert not [a for a in monitor(store, config, later.batch.run_id).alerts
                if a["alert_id"].startswith("health/feed_gone/")]  # fmt: skip

    # Re-enabled by giving it another address in config.yaml: asked there in the next cycle.
    feed_server.routes["/back.xml"] = Route.file("world_rss20.xml")
    moved = configure(tmp_path, feed_server, {"desk": "/back.xml", "world": "/world.xml"})
    back = cycle(moved)
    assert outcomes(moved, back)["desk"] == "ok" and feed_server.count("/back.xml") == 1
    assert feed_row(moved, "desk")[2:5:2] == ("interval", None)


def test_a_retired_feed_is_asked_again_at_the_same_address_when_config_says_so(
    feed_server, tmp_path
):
    feed_server.routes["/gone.xml"] = Route(status=410)
    config = configure(tmp_path, feed_server, {"desk": "/gone.xml"})
    cycle(config)
    assert feed_row(config, "desk")[2] == "gone"
    kept = configure(
        tmp_path, feed_server, {"desk": {"url": "/gone.xml", "retire_when_gone": False}}
    )
    cycle(kept)  # at once, though nothing else has changed
    assert feed_server.count("/gone.xml") == 2
    failures, _, reason, _, retired_at, _ = feed_row(kept, "desk")
    assert (failures, reason, retired_at) == (2, "backoff after 2 failures", None)


# --- redirects ----------------------------------------------------------------------------------


def test_a_permanent_redirect_chain_is_remembered_and_its_target_asked_directly(
    feed_server, tmp_path
):
    feed_server.routes["/old.xml"] = Route(redirect="/mid.xml", redirect_status=301)
    feed_server.routes["/mid.xml"] = Route(redirect="/new.xml", redirect_status=308)
    feed_server.routes["/new.xml"] = Route.file("world_rss20.xml", conditional=True)
    config = configure(tmp_path, feed_server, {"desk": "/old.xml"})
    first = cycle(config)
    assert feed_row(config, "desk")[5] == feed_server.url("/new.xml")
    (warning,) = [o.warning for o in first.batch.outcomes]
    assert warning == (
        f"moved permanently to {feed_server.url('/new.xml')}: update its url in config.yaml"
    )
    console = Console(file=io.StringIO(), width=300)
    print_summary(console, config, summarise(config, first))
    assert "desk: moved permanently to" in console.file.getvalue()

    second = cycle(config, datetime.now(UTC) + 20 * MINUTE)
    assert [feed_server.count(p) for p in ("/old.xml", "/mid.xml", "/new.xml")] == [1, 1, 2]
    # Asked with the validators of the address it was fetched from, and said once only.
    assert feed_server.requests_to("/new.xml")[-1].status == 304
    assert [o.outcome for o in second.batch.outcomes] == ["not_modified"]
    assert [o.warning for o in second.batch.outcomes] == [None]
    assert query(config, "SELECT url FROM feeds") == [(feed_server.url("/old.xml"),)]


@pytest.mark.parametrize(
    "first_hop, second_hop", [(302, None), (307, None), (301, 302), (302, 301)]
)
def test_a_redirect_with_a_temporary_hop_is_not_remembered(
    feed_server, tmp_path, first_hop, second_hop
):
    feed_server.routes["/a.xml"] = Route(
        redirect="/b.xml" if second_hop else "/c.xml", redirect_status=first_hop
    )
    if second_hop:
        feed_server.routes["/b.xml"] = Route(redirect="/c.xml", redirect_status=second_hop)
    feed_server.routes["/c.xml"] = Route.file("world_rss20.xml")
    config = configure(tmp_path, feed_server, {"desk": "/a.xml"})
    first = cycle(config)
    assert [o.warning for o in first.batch.outcomes] == [None]
    cycle(config, datetime.now(UTC) + 20 * MINUTE)
    assert feed_server.count("/a.xml") == 2 and feed_row(config, "desk")[5] is None


def test_a_moved_feed_with_a_token_is_stored_as_name_and_asked_with_the_token(
    feed_server, tmp_path, monkeypatch
):
    token = "tw-move-token-81d2c4"
    monkeypatch.setenv("TW_FEED_TOKEN", token)
    feed_server.routes[f"/private.xml?token={token}"] = Route(
        redirect=f"/moved.xml?key={token}", redirect_status=301
    )
    feed_server.routes[f"/moved.xml?key={token}"] = Route.file("world_rss20.xml")
    config = configure(tmp_path, feed_server, {"desk": "/private.xml?token=${TW_FEED_TOKEN}"})
    cycle(config)
    assert feed_row(config, "desk")[5] == feed_server.url("/moved.xml?key=${TW_FEED_TOKEN}")
    cycle(config, datetime.now(UTC) + 20 * MINUTE)
    assert feed_server.count(f"/moved.xml?key={token}") == 2
    assert feed_server.count(f"/private.xml?token={token}") == 1

    with duckdb.connect(str(config.database_path), read_only=True) as con:
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type IN ('VARCHAR', 'JSON') AND table_schema = 'main' "
            "AND table_name IN (SELECT table_name FROM duckdb_tables())"
        ).fetchall()
        for table, column in columns:
            leaks = con.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::VARCHAR LIKE ?', [f"%{token}%"]
            ).fetchall()
            assert leaks == [(0,)], f"{table}.{column} holds the token"


# --- ttl, max-age, per-feed interval ------------------------------------------------------------


def test_ttl_max_age_and_a_per_feed_interval_decide_when_each_feed_is_asked(feed_server, tmp_path):
    feed_server.routes["/ttl.xml"] = Route(body=TTL_FEED)
    feed_server.routes["/cached.xml"] = Route.file(
        "world_rss20.xml", extra_headers={"Cache-Control": "public, max-age=3600"}
    )
    feed_server.routes["/hourly.xml"] = Route.file("region_atom.xml")
    feed_server.routes["/hostile.xml"] = Route.file(
        "science_rss10.rdf", extra_headers={"Cache-Control": "max-age=99999999999999"}
    )
    paths = ["/ttl.xml", "/cached.xml", "/hourly.xml", "/hostile.xml"]
    config = configure(
        tmp_path, feed_server,
        {"slow": "/ttl.xml", "cached": "/cached.xml",
         "hourly": {"url": "/hourly.xml", "interval_minutes": 45}, "hostile": "/hostile.xml"},
    )  # fmt: skip
    t0 = datetime.now(UTC)
    cycle(config)
    reasons = dict(query(config, "SELECT feed_id, due_reason FROM feeds"))
    assert reasons == {"slow": "ttl", "cached": "max-age", "hourly": "interval",
                       "hostile": "max-age"}  # fmt: skip
    assert query(config, "SELECT ttl_minutes FROM feeds WHERE feed_id = 'slow'") == [(120,)]
    _, due, _, fetched_at, _, _ = feed_row(config, "hostile")
    assert 24 * HOUR <= due - fetched_at < 24 * HOUR + MINUTE  # not 3 million years

    # Each feed's next due time counts from when it answered (now, in this test), so the
    # cycles below, run as if later, see when each feed is first asked again.
    first_asked_again = {}
    for minutes in (40, 50, 65, 125, 24 * 60 - 5, 24 * 60 + 5):
        cycle(config, t0 + minutes * MINUTE)
        for path in paths:
            if feed_server.count(path) > 1:
                first_asked_again.setdefault(path, minutes)
    assert first_asked_again == {
        "/hourly.xml": 50,  # its own interval_minutes: 45
        "/cached.xml": 65,  # Cache-Control max-age=3600
        "/ttl.xml": 125,  # <ttl>120</ttl>
        "/hostile.xml": 24 * 60 + 5,  # its max-age cut to polling.max_interval_hours (24)
    }


# --- coverage -----------------------------------------------------------------------------------


def test_coverage_counts_a_feed_not_due_as_answering_and_one_waiting_or_retired_as_not(
    feed_server, tmp_path
):
    feed_server.routes["/calm.xml"] = Route.file("world_rss20.xml")
    feed_server.routes["/busy.xml"] = Route(status=429, extra_headers={"Retry-After": "14400"})
    feed_server.routes["/gone.xml"] = Route(status=410)
    config = configure(
        tmp_path, feed_server,
        {"calm": {"url": "/calm.xml", "interval_minutes": 600}, "busy": "/busy.xml",
         "gone": "/gone.xml"},
    )  # fmt: skip
    cycle(config)
    later = datetime.now(UTC) + 2 * HOUR  # nobody is asked: each for its own reason
    report = cycle(config, later)
    assert outcomes(config, report) == {"calm": "not_due", "busy": "waiting", "gone": "retired"}
    bucket = later.replace(minute=0, second=0, microsecond=0)
    rows = query(
        config,
        "SELECT feeds_answered, feeds_polled FROM polling_buckets "
        "WHERE width = 'hour' AND bucket = ?",
        [bucket],
    )
    assert rows == [(1, 3)]


# --- the pending queue --------------------------------------------------------------------------


def test_polling_state_survives_batches_kept_while_the_database_is_locked(feed_server, tmp_path):
    for path in ("/busy.xml", "/old.xml", "/gone.xml"):
        feed_server.routes[path] = Route.file("world_rss20.xml")
    config = configure(
        tmp_path, feed_server, {"busy": "/busy.xml", "old": "/old.xml", "gone": "/gone.xml"},
        storage={"lock_timeout_seconds": 0.2, "lock_retry_seconds": 0.05},
    )  # fmt: skip
    t0 = datetime.now(UTC)
    cycle(config)
    feed_server.routes["/busy.xml"] = Route(status=429, extra_headers={"Retry-After": "7200"})
    feed_server.routes["/old.xml"] = Route(redirect="/new.xml", redirect_status=301)
    feed_server.routes["/new.xml"] = Route.file("region_atom.xml")
    feed_server.routes["/gone.xml"] = Route(status=410)

    holder = subprocess.Popen(
        child_command("hold", str(config.database_path)), stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(DatabaseLockedError):
            cycle(config, t0 + 20 * MINUTE)
        counts = {p: feed_server.count(p) for p in ("/busy.xml", "/gone.xml", "/new.xml")}
        assert counts == {"/busy.xml": 2, "/gone.xml": 2, "/new.xml": 1}
        # Still locked: the state kept beside the queue says who is due, and where.
        with pytest.raises(DatabaseLockedError):
            cycle(config, t0 + 40 * MINUTE)
        assert feed_server.count("/busy.xml") == 2 and feed_server.count("/gone.xml") == 2
        assert feed_server.count("/new.xml") == 2 and feed_server.count("/old.xml") == 2
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout:
            holder.stdout.close()

    report = cycle(config, t0 + 60 * MINUTE)
    assert report.pending_stored == 2
    state = {row[0]: row[1:] for row in query(
        config, "SELECT feed_id, due_reason, retired_at IS NOT NULL, moved_to FROM feeds")}  # fmt: skip
    assert state == {
        "busy": ("retry-after", False, None),
        "gone": ("gone", True, None),
        "old": ("interval", False, feed_server.url("/new.xml")),
    }


def test_a_feed_told_to_wait_is_not_asked_while_someone_holds_the_database(feed_server, tmp_path):
    feed_server.routes["/busy.xml"] = Route(status=429, extra_headers={"Retry-After": "7200"})
    config = configure(
        tmp_path, feed_server, {"busy": "/busy.xml"},
        storage={"lock_timeout_seconds": 0.2, "lock_retry_seconds": 0.05},
    )  # fmt: skip
    cycle(config)  # stored: the read copy holds the feed's Retry-After too
    holder = subprocess.Popen(
        child_command("hold", str(config.database_path)), stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        # The database cannot even be read: the read copy says when the feed is due.
        with pytest.raises(DatabaseLockedError):
            cycle(config, datetime.now(UTC) + HOUR)
        assert feed_server.count("/busy.xml") == 1
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout:
            holder.stdout.close()


# --- an older database --------------------------------------------------------------------------

# feed_health and runs_summary as a database of migration 008 holds them.
VIEWS_OF_008 = (Path(__file__).parent / "fixtures" / "views_of_008.sql").read_text(encoding="utf-8")


def test_a_database_of_migration_008_moves_forward_and_keeps_its_validators(feed_server, tmp_path):
    feed_server.routes["/world.xml"] = Route.file("world_rss20.xml", conditional=True)
    config = configure(tmp_path, feed_server, {"world": "/world.xml"})
    first = feed_server.url("/world.xml")
    with old_database(config.database_path, 8) as con:
        con.execute(VIEWS_OF_008)
        etag = '"' + hashlib.sha1(feed_server.routes["/world.xml"].body).hexdigest()[:16] + '"'
        con.execute(
            "INSERT INTO feeds (feed_id, url, language, added_at, etag, consecutive_failures) "
            "VALUES ('world', ?, 'en', now(), ?, 2)",
            [first, etag],
        )
        con.execute("INSERT INTO runs VALUES ('r0', now(), now(), now(), 1, 0, 0, 1, 0, 0, '{}')")
    report = cycle(config)
    # The first cycle after the upgrade still asks with the validators it had (304).
    assert feed_server.requests_to("/world.xml")[-1].status == 304
    newest = max(version for version, _, _ in migrations())
    assert query(config, "SELECT max(version) FROM schema_migrations") == [(newest,)]
    failures, due, reason, _, retired_at, moved_to = feed_row(config, "world")
    assert (failures, reason, retired_at, moved_to) == (0, "interval", None, None)
    assert query(
        config, "SELECT feeds_not_due, feeds_waiting, feeds_retired FROM runs ORDER BY run_id"
    ) == [(0, 0, 0), (0, 0, 0)]
    assert outcomes(config, report) == {"world": "not_modified"}
    assert query(config, "SELECT feed_id, next_due_at = ?, due_reason FROM feed_health", [due]) == [
        ("world", True, "interval")
    ]
    assert len(query(config, "SELECT feeds_not_due FROM runs_summary")) == 2


def test_a_config_edited_to_the_new_address_starts_afresh(feed_server, tmp_path):
    feed_server.routes["/old.xml"] = Route(redirect="/new.xml", redirect_status=301)
    feed_server.routes["/new.xml"] = Route.file("world_rss20.xml", conditional=True)
    config = configure(tmp_path, feed_server, {"desk": "/old.xml"})
    cycle(config)
    path = tmp_path / "config.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["feeds"][0]["url"] = feed_server.url("/new.xml")
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    updated = load_config(path)
    cycle(updated, datetime.now(UTC) + 20 * MINUTE)
    # The new address is fetched whole (validators belong to an address as configured) and
    # nothing is remembered as moved any more.
    assert "If-None-Match" not in feed_server.requests_to("/new.xml")[-1].headers
    assert feed_row(updated, "desk")[5] is None
