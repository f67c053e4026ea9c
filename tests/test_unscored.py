"""Unscored is not zero: stories in a language a topic has no rules for are counted apart."""

from io import StringIO

from rich.console import Console

from tensionwatch.cli import print_summary
from tensionwatch.config import load_config
from tensionwatch.store import Store
from tensionwatch.summary import summarise
from tests.conftest import old_database, write_config
from tests.feedserver import Route
from tests.test_cycle import query, run_cycle

# Written for this test: a feed in Polish (the topics have rules for English and Turkish only).
POLISH = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Serwis</title>
<item><title>Iran grozi Izraelowi odwetem po ataku dronów</title><link>https://pl.example/1</link></item>
<item><title>Turcja i Rosja rozmawiają o sankcjach</title><link>https://pl.example/2</link></item>
</channel></rss>""".encode()


def test_stories_in_an_uncovered_language_are_unscored_and_counted_apart(feed_server, tmp_path):
    feed_server.routes["/world.xml"] = Route.file("world_rss20.xml")
    feed_server.routes["/pl.xml"] = Route(body=POLISH)
    feeds = [
        {"name": "world", "url": feed_server.url("/world.xml")},
        {"name": "serwis", "url": feed_server.url("/pl.xml"), "language": "pl"},
    ]
    config = load_config(write_config(tmp_path, feeds))
    report = run_cycle(config)

    rows = query(
        config,
        "SELECT sc.topic, sc.scored, count(*) FROM story_scores sc JOIN stories s USING (story_id)"
        " WHERE s.feed_id = 'serwis' GROUP BY ALL ORDER BY 1",
    )
    assert rows == [("iran_israel", False, 2), ("tr_ru", False, 2)]
    totals = query(
        config,
        "SELECT topic, sum(all_stories), sum(unscored_stories) FROM topic_daily GROUP BY 1 ORDER BY 1",
    )
    assert totals == [("iran_israel", 9, 2), ("tr_ru", 9, 2)]  # world's 9 read, Polish 2 not

    out = StringIO()
    print_summary(Console(file=out, width=200), config, summarise(config, report))
    assert "Not scored, no rules for their language: iran_israel 2 (pl 2); tr_ru 2 (pl 2)" in (
        out.getvalue()
    )


def test_a_database_from_before_counts_its_skipped_scores_as_unscored(tmp_path):
    path = tmp_path / "old.duckdb"
    with old_database(path, 2) as con:  # the schema of the release before
        con.execute(
            "INSERT INTO stories VALUES ('s1', 'f', 'r', 'Iran i Izrael', '', NULL, NULL, NULL,"
            " now(), now(), 'pl'), ('s2', 'f', 'r', 'Iran and Israel', '', NULL, NULL, NULL,"
            " now(), now(), 'en')"
        )
        con.execute(
            "INSERT INTO story_scores VALUES"
            " ('s1', 't', 'v1', 0, false, '{\"skipped\": \"language pl\"}', now()),"
            " ('s2', 't', 'v1', 0, false, '{\"actors\": {}}', now())"
        )
    store = Store(path)
    with store.connect() as con:
        store.migrate(con)
        assert con.execute(
            "SELECT story_id, scored FROM story_scores ORDER BY story_id"
        ).fetchall() == [("s1", False), ("s2", True)]
