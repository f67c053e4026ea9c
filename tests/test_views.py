"""The topic index views on a database built by real cycles, one test per column that matters.

The feeds are written for these tests: a wire story carried by two outlets, a second story, a
ceasefire, a quiet day, and a Turkish feed that fails."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import duckdb
import pytest

from tensionwatch.config import Feed, load_config
from tests.conftest import default_topics, old_database, write_config
from tests.feedserver import Route
from tests.test_cycle import run_cycle

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
DAY1, DAY2, DAY3 = (TODAY - timedelta(days=n) for n in (3, 2, 1))


def rss(*items: tuple[str, str, datetime]) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><link>https://news.test/{link}</link>"
        f"<pubDate>{format_datetime(when)}</pubDate></item>"
        for title, link, when in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>'.encode()


@pytest.fixture
def index_db(feed_server, tmp_path):
    routes = {
        "/wire.xml": rss(
            ("Israel strikes air defence sites in Iran", "w1", DAY1 + timedelta(hours=10)),
            ("Iran and Israel agree to a ceasefire", "w2", DAY3 + timedelta(hours=9)),
        ),
        "/daily-world.xml": rss(
            ("Israel strikes air defence sites in Iran, officials say", "d1",
             DAY1 + timedelta(hours=11)),
            ("Parliament passes the budget after a long debate", "d2", DAY1 + timedelta(hours=8)),
        ),
        "/daily-region.xml": rss(
            ("Iran fires missiles at northern Israel", "r1", DAY1 + timedelta(hours=12)),
        ),
    }  # fmt: skip
    for path, body in routes.items():
        feed_server.routes[path] = Route(body=body)
    feed_server.routes["/haber.xml"] = Route(status=404)
    feeds = [
        {"name": "wire", "url": feed_server.url("/wire.xml"), "outlet": "Wire"},
        {"name": "daily_world", "url": feed_server.url("/daily-world.xml"), "outlet": "Daily"},
        {"name": "daily_region", "url": feed_server.url("/daily-region.xml"), "outlet": "Daily"},
        {"name": "haber", "url": feed_server.url("/haber.xml"), "language": "tr"},
    ]
    topics = default_topics()
    topics["iran_israel"]["languages"] = ["en"]  # its coverage ignores the Turkish feed
    config = load_config(write_config(tmp_path, feeds, topics=topics))
    run_cycle(config)
    run_cycle(config)
    return config


def rows(config, sql, timezone="UTC"):
    with duckdb.connect(str(config.database_path), read_only=True) as con:
        con.execute(f"SET TimeZone = '{timezone}'")
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def daily(config, topic="iran_israel"):
    return {
        r["bucket"]: r
        for r in rows(config, f"SELECT * FROM topic_daily WHERE topic = '{topic}' ORDER BY bucket")
    }


def test_days_without_stories_are_zero_rows_up_to_today(index_db):
    days = daily(index_db)
    assert sorted(days) == [DAY1, DAY2, DAY3, TODAY]
    quiet = days[DAY2]
    assert (quiet["relevant_stories"], quiet["all_stories"], quiet["events"]) == (0, 0, 0)
    assert quiet["score_sum"] == 0 and quiet["outlets"] == 0


def test_buckets_are_instants_whatever_the_session_time_zone(index_db):
    tokyo = rows(index_db, "SELECT bucket FROM topic_daily ORDER BY bucket", "Asia/Tokyo")
    assert tokyo[0]["bucket"] == DAY1  # the same instant: UTC midnight, shown in Tokyo time
    assert tokyo[0]["bucket"].utcoffset() == timedelta(hours=9)


def test_copies_are_one_event_and_two_feeds_of_one_outlet_are_one_outlet(index_db):
    day = daily(index_db)[DAY1]
    assert day["relevant_stories"] == 3  # the strike twice (wire, daily), the missiles
    assert day["events"] == 2
    assert day["outlets"] == 2  # Wire, and Daily with its two feeds


def test_share_counts_tension_not_a_ceasefire(index_db):
    days = daily(index_db)
    assert days[DAY1]["share"] == pytest.approx(3 / 4)  # 3 tense of 4 English stories
    ceasefire = days[DAY3]
    assert ceasefire["relevant_stories"] == 1 and ceasefire["tension_stories"] == 0
    assert ceasefire["score_sum"] < 0 and ceasefire["share"] == 0


def test_threat_and_act_points_split_the_score(index_db):
    day = daily(index_db)[DAY1]
    assert day["act_sum"] > 0  # strikes, missiles
    assert day["act_sum"] + day["threat_sum"] == pytest.approx(day["score_sum"])


def test_index_averages_100_over_the_base_period(index_db):
    days = daily(index_db)
    shares = [d for d in days.values() if d["share"] is not None]
    assert sum(d["index"] for d in shares) / len(shares) == pytest.approx(100)
    assert days[DAY2]["index"] is None  # no stories: no share, no index


def test_coverage_is_per_topic_and_unpolled_days_are_flagged(index_db):
    today = daily(index_db)[TODAY]
    assert today["coverage"] == 1.0 and not today["poor_coverage"]  # English feeds only
    tr_ru = daily(index_db, "tr_ru")[TODAY]
    assert tr_ru["coverage"] == pytest.approx(3 / 4) and not tr_ru["poor_coverage"]
    # Nobody polled on the days the stories were published: unknown, not calm.
    past = daily(index_db)[DAY2]
    assert past["coverage"] is None and past["poor_coverage"]


def test_topic_trend_rolls_the_index_over_days(index_db):
    trend = rows(index_db, "SELECT * FROM topic_trend WHERE topic = 'iran_israel' ORDER BY day")
    assert [t["day"] for t in trend] == [DAY1, DAY2, DAY3, TODAY]
    known = [t["index"] for t in trend if t["index"] is not None]
    assert trend[-1]["mean_7d"] == pytest.approx(sum(known) / len(known))
    assert trend[0]["deviation_7d"] == 0


def test_top_stories_name_outlet_link_terms_and_how_many_outlets_carried_it(index_db):
    top = rows(index_db, "SELECT * FROM top_stories WHERE topic = 'iran_israel' ORDER BY day, rank")
    first = top[0]
    assert first["day"] == DAY1.date() and first["rank"] == 1
    assert first["url"].startswith("https://news.test/") and first["outlet"] in ("Wire", "Daily")
    assert first["terms"] and all(isinstance(t, str) for t in first["terms"])
    strike = [t for t in top if "strikes air defence" in t["title"]]
    assert {t["event_outlets"] for t in strike} == {2}


def test_feed_health_and_runs_summary(index_db):
    health = {r["feed_id"]: r for r in rows(index_db, "SELECT * FROM feed_health")}
    assert health["haber"]["consecutive_failures"] == 2 and "404" in health["haber"]["last_error"]
    assert health["wire"]["last_ok_at"] is not None and health["wire"]["fetches"] == 2
    assert health["wire"]["median_fetch_ms"] is not None and health["wire"]["stories_per_day"] == 2
    runs = rows(index_db, "SELECT * FROM runs_summary")
    assert len(runs) == 2 and runs[0]["duration_s"] >= 0
    assert runs[0]["relevant_by_topic"]["iran_israel"] == 4 and runs[1]["stories_new"] == 0
    assert runs[0]["feeds_failed"] == 1


def test_an_outlet_defaults_to_the_feed_host():
    assert Feed(name="a", url="https://feeds.bbci.co.uk/news/world/rss.xml").outlet_name == (
        "bbci.co.uk"
    )
    assert Feed(name="b", url="https://www.bbc.co.uk/x", outlet="BBC").outlet_name == "BBC"


def test_a_database_from_before_005_gets_event_times_and_knows_its_stale_history(tmp_path):
    from tensionwatch.store import Store

    path = tmp_path / "old.duckdb"
    with old_database(path, 4) as con:  # the schema of the release before
        con.execute(
            "INSERT INTO stories VALUES ('s1', 'f', 'r', 't', '', NULL, NULL, NULL, now(),"
            " TIMESTAMPTZ '2026-01-02 03:04:05+00', 'en')"
        )
        con.execute("INSERT INTO story_events VALUES ('s1', 's1', NULL, now())")
        con.execute(
            "INSERT INTO story_scores (story_id, topic, rules_version, score, relevant, matches,"
            " scored_at) VALUES ('s1', 't', 'old', 0, false, '{}', now())"
        )
        con.execute("INSERT INTO rule_versions VALUES ('t', 'old', NULL, now(), false),"
                    " ('t', 'new', NULL, now(), true)")  # fmt: skip
    store = Store(path)
    with store.connect() as con:
        store.migrate(con)
        assert con.execute("SELECT event_at FROM story_events").fetchall()[0][0] == datetime(
            2026, 1, 2, 3, 4, 5, tzinfo=UTC
        )
        assert con.execute(
            "SELECT rules_version, history_stale FROM rule_versions WHERE is_current"
        ).fetchall() == [("new", True)]
