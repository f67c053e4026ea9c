"""The trend tables each cycle keeps (topic_buckets, polling_buckets, top_story_ranks) hold what
a rebuild from the whole history would: a cycle recomputes only the buckets it touches, and
what it touches includes earlier days whose events gain a copy, a backfilled story's old day,
and, after a rescore, the rescored history."""

import shutil
from datetime import timedelta

import duckdb
import pytest

from tensionwatch.config import load_config
from tensionwatch.rescoring import rescore
from tensionwatch.store import Store
from tests.conftest import default_topics, old_database, write_config
from tests.feedserver import Route
from tests.test_cycle import run_cycle
from tests.test_views import DAY1, DAY2, TODAY, rows, rss

TABLES = ("topic_buckets", "polling_buckets", "top_story_ranks")


def table_rows(path, table):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def assert_same_as_a_rebuild(config, tmp_path):
    copy = tmp_path / "rebuilt.duckdb"
    shutil.copy(config.database_path, copy)
    store = Store(copy)
    with store.connect() as con:
        con.execute("BEGIN TRANSACTION")
        for table in TABLES:
            con.execute(f"DELETE FROM {table}")
        store.rebuild_trend_tables(con)
        con.execute("COMMIT")
    for table in TABLES:
        kept, rebuilt = table_rows(config.database_path, table), table_rows(copy, table)
        assert kept and kept == rebuilt, table


@pytest.fixture
def grown(feed_server, tmp_path):
    """Three cycles: a wire story and a backfilled one; a copy of the wire story a day later
    from another outlet; then a cycle whose only feed fails."""
    feed_server.routes["/wire.xml"] = Route(
        body=rss(
            ("Israel strikes air defence sites in Iran", "w1", DAY1 + timedelta(hours=10)),
            ("Iran warns Israel over strikes on its ports", "w0", TODAY - timedelta(days=200)),
        )
    )
    feed_server.routes["/daily.xml"] = Route(body=rss())
    feeds = [
        {"name": "wire", "url": feed_server.url("/wire.xml"), "outlet": "Wire"},
        {"name": "daily", "url": feed_server.url("/daily.xml"), "outlet": "Daily"},
    ]
    config = load_config(write_config(tmp_path, feeds))
    run_cycle(config)
    feed_server.routes["/daily.xml"] = Route(
        body=rss(
            ("Israel strikes air defence sites in Iran - Daily", "d1", DAY2 + timedelta(hours=1)),
            ("Iran fires missiles at northern Israel", "d2", TODAY + timedelta(minutes=1)),
        )
    )
    run_cycle(config)
    feed_server.routes["/daily.xml"] = Route(status=500)
    run_cycle(config)
    return config


def test_a_copy_a_day_later_updates_the_outlet_count_of_the_first_day(grown):
    (first,) = rows(grown, f"SELECT * FROM top_stories WHERE day = DATE '{DAY1.date()}'")
    assert first["title"] == "Israel strikes air defence sites in Iran"
    assert first["event_outlets"] == 2  # the copy arrived a cycle later, dated the next day
    old = rows(grown, "SELECT * FROM topic_daily WHERE relevant_stories > 0 ORDER BY bucket")
    assert old[0]["bucket"] == TODAY - timedelta(days=200)  # the backfilled day has its row


def test_the_tables_a_cycle_keeps_equal_a_rebuild_from_history(grown, tmp_path):
    assert_same_as_a_rebuild(grown, tmp_path)
    (today,) = rows(grown, f"SELECT * FROM topic_daily WHERE bucket = TIMESTAMPTZ '{TODAY}'"
                           " AND topic = 'iran_israel'")  # fmt: skip
    assert today["feeds_polled"] == 2 and today["relevant_stories"] == 1


def test_rescore_rebuilds_the_tables_for_the_new_rules(grown, tmp_path):
    topics = default_topics()
    topics["iran_israel"]["signals"].append({"term": "ports", "weight": 5})  # a new version
    changed = load_config(write_config(tmp_path, [f.model_dump() for f in grown.feeds],
                                       topics=topics))  # fmt: skip
    rescore(Store.from_config(changed), changed, ["iran_israel"])
    versions = rows(changed, "SELECT DISTINCT rules_version FROM topic_daily_by_version"
                             " WHERE topic = 'iran_israel'")  # fmt: skip
    assert len(versions) == 2
    old_day = rows(changed, "SELECT * FROM topic_daily WHERE topic = 'iran_israel'"
                            f" AND bucket = TIMESTAMPTZ '{TODAY - timedelta(days=200)}'")  # fmt: skip
    assert (
        old_day[0]["score_sum"]
        > rows(
            changed,
            "SELECT score_sum FROM topic_daily_by_version WHERE topic = 'iran_israel'"
            f" AND bucket = TIMESTAMPTZ '{TODAY - timedelta(days=200)}'"
            " AND rules_version <> (SELECT rules_version FROM topic_daily LIMIT 1)",
        )[0]["score_sum"]
    )
    assert_same_as_a_rebuild(changed, tmp_path)


def test_a_database_from_before_006_gets_its_trend_tables_from_its_history(tmp_path):
    path = tmp_path / "old.duckdb"
    with old_database(path, 5) as con:  # the schema of the release before
        con.execute("INSERT INTO feeds (feed_id, url, language, added_at, outlet)"
                    " VALUES ('f', 'u', 'en', now(), 'Wire')")  # fmt: skip
        con.execute(
            "INSERT INTO stories VALUES ('s1', 'f', 'r', 'Iran warns Israel', '', NULL, NULL,"
            " NULL, now(), TIMESTAMPTZ '2026-01-02 03:04:05+00', 'en')"
        )
        con.execute("INSERT INTO rule_versions VALUES ('t', 'v', NULL, now(), true, false)")
        con.execute(
            "INSERT INTO story_scores (story_id, topic, rules_version, score, relevant, matches,"
            " scored_at, threat_points) VALUES ('s1', 't', 'v', 2, true, '{}', now(), 2)"
        )
    store = Store(path)
    with store.connect() as con:
        store.migrate(con)
        (day,) = con.execute(
            "SELECT relevant_stories, threat_sum, outlets FROM topic_daily"
            " WHERE bucket = TIMESTAMPTZ '2026-01-02 00:00:00+00'"
        ).fetchall()
        assert day == (1, 2.0, 1)
        assert con.execute("SELECT title, event_outlets FROM top_stories").fetchall() == [
            ("Iran warns Israel", 1)
        ]


def test_a_story_that_leaves_a_feed_and_comes_back_or_moves_feed_is_stored_once(
    feed_server, tmp_path
):
    # A cycle looks up in `stories` only the ids a feed did not carry last time; these ids
    # are exactly the ones it must not take for new.
    first = ("Iran warns Israel over strikes on its ports", "p1", DAY1)
    other = ("Parliament passes the budget", "p2", DAY2)
    feed_server.routes["/a.xml"] = Route(body=rss(first, other))
    feed_server.routes["/b.xml"] = Route(body=rss())
    feeds = [
        {"name": "a", "url": feed_server.url("/a.xml")},
        {"name": "b", "url": feed_server.url("/b.xml")},
    ]
    config = load_config(write_config(tmp_path, feeds))
    assert len(run_cycle(config).new_story_ids) == 2
    feed_server.routes["/a.xml"] = Route(body=rss(other))  # the first story leaves feed a
    assert run_cycle(config).new_story_ids == frozenset()
    feed_server.routes["/a.xml"] = Route(body=rss(first, other))  # and comes back
    feed_server.routes["/b.xml"] = Route(body=rss(other))  # another feed carries the second
    assert run_cycle(config).new_story_ids == frozenset()
    counts = rows(config, "SELECT count(*) AS n, count(DISTINCT story_id) AS ids FROM stories")
    assert counts == [{"n": 2, "ids": 2}]


def test_a_database_from_before_007_keeps_every_score_and_grouping(tmp_path):
    # 007 copies story_scores and story_events into tables without a key index.
    path = tmp_path / "old.duckdb"
    with old_database(path, 6) as con:
        con.execute("INSERT INTO stories VALUES ('s1', 'f', 'r', 'Iran warns Israel', '', NULL,"
                    " NULL, NULL, now(), TIMESTAMPTZ '2026-01-02 03:04:05+00', 'en')")  # fmt: skip
        con.execute(
            "INSERT INTO story_scores VALUES ('s1', 't', 'v', 2, true, '{\"signals\": []}', now(),"
            " true, 2, 0, TIMESTAMPTZ '2026-01-02 03:04:05+00'), ('s1', 'u', 'w', 0, false, '{}',"
            " now(), false, 0, 0, TIMESTAMPTZ '2026-01-02 03:04:05+00')"
        )
        con.execute(
            "INSERT INTO story_events VALUES ('s1', 's1', NULL, now(),"
            " TIMESTAMPTZ '2026-01-02 03:04:05+00', TIMESTAMPTZ '2026-01-02 03:04:05+00',"
            " ['iran', 'israel', 'warns'])"
        )
        before = {
            t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("story_scores", "story_events")
        }
    store = Store(path)
    with store.connect() as con:
        store.migrate(con)
    for table, kept in before.items():
        assert table_rows(path, table) == kept, table
