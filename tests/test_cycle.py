"""The monitoring cycle end to end, without Prefect: fixture feeds → real DuckDB file."""

import json
import re
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime

import duckdb
import pytest
import yaml

from tensionwatch.config import load_config
from tensionwatch.cycle import new_batch, parse_and_score
from tensionwatch.errors import DatabaseLockedError
from tensionwatch.fetch import fetch_feeds
from tensionwatch.store import Store
from tests.conftest import write_config
from tests.feedserver import Route

ROUTES = {
    "/world.xml": lambda: Route.file("world_rss20.xml", conditional=True),
    "/region.atom": lambda: Route.file("region_atom.xml", content_type="application/atom+xml"),
    "/science.rdf": lambda: Route.file("science_rss10.rdf", content_type="application/rdf+xml"),
    "/haber.xml": lambda: Route.file(
        "haber_tr.xml", conditional=True, content_type="application/rss+xml; charset=iso-8859-9"
    ),
    "/broken.xml": lambda: Route.file("broken_rss.xml"),
    "/login.html": lambda: Route.file("not_a_feed.html", content_type="text/html"),
    "/error.xml": lambda: Route(status=500),
    "/slow.xml": lambda: Route.file("world_rss20.xml", delay=4),
}
NAMES = {
    "/world.xml": "world",
    "/region.atom": "region",
    "/science.rdf": "science",
    "/haber.xml": "haber",
    "/broken.xml": "broken",
    "/login.html": "login",
    "/error.xml": "error",
    "/slow.xml": "slow",
}


@pytest.fixture
def config(feed_server, tmp_path):
    for path, make in ROUTES.items():
        feed_server.routes[path] = make()
    feeds = [
        {
            "name": NAMES[p],
            "url": feed_server.url(p),
            "language": "tr" if p == "/haber.xml" else "en",
        }
        for p in ROUTES
    ]
    return load_config(
        write_config(tmp_path, feeds, fetch={"timeout_seconds": 1, "deadline_seconds": 2})
    )


def run_cycle(config):
    store = Store.from_config(config)
    results = fetch_feeds(config.feeds, store.load_states(config), config.fetch)
    batch = parse_and_score(config, new_batch(config), results)
    return store.store_cycle(config, batch)


def query(config, sql, params=None):
    with duckdb.connect(str(config.database_path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def outcomes(config, run_id):
    rows = query(
        config,
        "SELECT feed_id, outcome, entries_seen, entries_new, error, warning "
        "FROM fetches WHERE run_id = ?",
        [run_id],
    )
    return {r[0]: r[1:] for r in rows}


def test_cycle_stores_what_each_feed_should_give(config):
    report = run_cycle(config)
    got = outcomes(config, report.batch.run_id)
    assert got["world"][:3] == ("ok", 9, 9)
    assert got["region"][:3] == ("ok", 4, 3)  # one entry is world's Hezbollah story again
    assert got["science"][:3] == ("ok", 3, 3)
    assert got["haber"][:3] == ("ok", 6, 6)
    assert (
        got["broken"][:3] == ("ok", 3, 3)
        and "malformed feed, 3 entries recovered" in got["broken"][4]
    )
    assert got["login"][0] == "error" and "an HTML page, not a feed" in got["login"][3]
    assert got["error"][0] == "error" and got["error"][3].startswith("HTTP 500")
    assert got["slow"][0] == "error" and "2 s" in got["slow"][3]
    assert query(config, "SELECT count(*) FROM stories") == [(24,)]
    run = query(config, "SELECT feeds_total, feeds_ok, feeds_failed, stories_new FROM runs")
    assert run == [(8, 5, 3, 24)]


def test_stories_have_clean_text_and_utc_times(config):
    run_cycle(config)
    (markup,) = query(
        config,
        "SELECT count(*) FROM stories WHERE regexp_matches(title || summary, "
        "'<[a-z/]|&(amp|lt|gt|quot|#[0-9]+);')",
    )[0]
    assert markup == 0
    turkish = query(config, "SELECT title FROM stories WHERE feed_id = 'haber'")
    assert any("İsrail'e" in t for (t,) in turkish)
    # A malformed pubDate never drops a story: its time is when we first saw it.
    (row,) = query(
        config,
        "SELECT published_at, event_at = first_seen_at FROM stories "
        "WHERE summary ILIKE '%ceasefire%' AND feed_id = 'world'",
    )
    assert row == (None, True)
    (dated,) = query(config, "SELECT published_at FROM stories WHERE url LIKE '%seed-ambassador'")[
        0
    ]
    assert dated == datetime(2024, 8, 1, 14, 30, tzinfo=UTC)  # the same instant in any zone


def test_seed_story_is_scored_for_both_topics_with_its_matches(config):
    run_cycle(config)
    rows = query(
        config,
        "SELECT topic, relevant, score, matches FROM story_scores JOIN stories "
        "USING (story_id) WHERE url LIKE '%seed-ambassador' ORDER BY topic",
    )
    assert [(t, r) for t, r, _, _ in rows] == [("iran_israel", True), ("tr_ru", True)]
    tr_ru_matches = json.loads(rows[1][3])
    assert "dual use" in {s["term"] for s in tr_ru_matches["signals"]}
    assert all(score > 0 for _, _, score, _ in rows)
    decoys = query(
        config,
        "SELECT count(*) FILTER (WHERE relevant) FROM story_scores JOIN stories "
        "USING (story_id) WHERE url LIKE '%friendly%' OR url LIKE '%hazelnut%'",
    )
    assert decoys == [(0,)]


def test_second_cycle_over_unchanged_feeds_adds_nothing(config, feed_server):
    first = run_cycle(config)
    second = run_cycle(config)
    assert len(first.new_story_ids) == 24 and not second.new_story_ids
    assert query(config, "SELECT count(*), count(DISTINCT story_id) FROM stories") == [(24, 24)]
    assert query(config, "SELECT count(*) FROM story_scores") == [(48,)]
    got = outcomes(config, second.batch.run_id)
    assert got["world"][0] == "not_modified" and got["haber"][0] == "not_modified"
    assert got["region"][0] == "unchanged"  # no validators, same bytes: not parsed again
    assert feed_server.requests_to("/world.xml")[-1].status == 304


def test_locked_database_loses_nothing(config):
    run_cycle(config)  # creates the file
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('locked', flush=True); "
            "time.sleep(60)",
            str(config.database_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        store = Store.from_config(config)
        results = fetch_feeds(config.feeds, {}, config.fetch)  # full GETs: state is unreadable
        batch = parse_and_score(config, new_batch(config), results)
        # A story that only this cycle saw (the feed dropped it before the next one).
        batch.stories.append(
            replace(
                batch.stories[0], story_id="0123456789abcdef", title="Story seen only while locked"
            )
        )
        started = time.monotonic()
        with pytest.raises(DatabaseLockedError) as caught:
            store.store_cycle(config, batch)
        assert time.monotonic() - started >= 2  # it waited lock_timeout_seconds
        assert f"(PID {holder.pid})" in str(caught.value)
        assert store.pending_count() == 1
        # What feeds said, and their addresses, readable by the owner only.
        (kept,) = store.queue.paths()
        assert kept.stat().st_mode & 0o077 == 0 and store.pending_dir.stat().st_mode & 0o077 == 0
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    later = run_cycle(config)
    assert later.pending_stored == 1 and store.pending_count() == 0
    assert query(config, "SELECT title FROM stories WHERE story_id = '0123456789abcdef'") == [
        ("Story seen only while locked",)
    ]
    assert query(config, "SELECT count(*) FROM runs") == [(3,)]
    assert query(config, "SELECT count(*), count(DISTINCT story_id) FROM stories") == [(25, 25)]


def test_database_newer_than_the_code_is_refused(config):
    run_cycle(config)
    with duckdb.connect(str(config.database_path)) as con:
        con.execute("INSERT INTO schema_migrations VALUES (999, 'future', now())")
    with pytest.raises(Exception, match="schema version 999, newer than this tensionwatch"):
        run_cycle(config)


def test_explain_shows_the_stored_story_and_why_it_scored(config, tmp_path, capsys):
    from tensionwatch.cli import main

    run_cycle(config)
    ((story_id,),) = query(config, "SELECT story_id FROM stories WHERE url LIKE '%seed-ambassador'")
    assert main(["explain", "--config", str(tmp_path / "config.yaml"), story_id[:8]]) == 0
    out = capsys.readouterr().out
    assert out.startswith("US envoy urges Türkiye to press Iran")
    assert f"{story_id} · world" in out
    assert "tr_ru — Türkiye–Russia export concerns" in out and "· relevant · score" in out
    assert "stored: score" in out and "not the current rules" not in out
    assert re.search(r"signal/threat dual use \(summary, sentence \d+\) weight 3", out)
    assert re.search(r"actor group russia: russia\* \(summary, sentence \d+\)", out)


def test_explain_names_a_missing_story(config, tmp_path, capsys):
    from tensionwatch.cli import main

    run_cycle(config)
    assert main(["explain", "--config", str(tmp_path / "config.yaml"), "ffffffffffff"]) == 1
    assert "no story with id 'ffffffffffff'" in capsys.readouterr().err


def test_rescore_after_a_weight_change_records_the_new_version(config, tmp_path, capsys):
    from tensionwatch.cli import main

    run_cycle(config)
    config_path = tmp_path / "config.yaml"
    old = load_config(config_path).topics["tr_ru"].rules_version()
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    dual_use = next(s for s in raw["topics"]["tr_ru"]["signals"] if s["term"] == "dual use")
    dual_use["weight"] = 10
    config_path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    new = load_config(config_path).topics["tr_ru"].rules_version()
    assert new != old

    assert main(["rescore", "--config", str(config_path), "--topic", "tr_ru"]) == 0
    assert f"current rules: tr_ru {new}" in capsys.readouterr().out
    seed = (
        "SELECT rules_version, score FROM story_scores JOIN stories USING (story_id) "
        "WHERE url LIKE '%seed-ambassador' AND topic = 'tr_ru' ORDER BY score"
    )
    (old_row, new_row) = query(config, seed)
    assert old_row[0] == old and new_row[0] == new and new_row[1] == old_row[1] + 7  # 3 → 10
    daily = "SELECT DISTINCT rules_version FROM topic_daily WHERE topic = 'tr_ru'"
    assert query(config, daily) == [(new,)]
    by_version = (
        "SELECT rules_version, sum(score_sum) FROM topic_daily_by_version "
        "WHERE topic = 'tr_ru' GROUP BY ALL ORDER BY 2"
    )
    sums = query(config, by_version)
    assert [v for v, _ in sums] == [old, new] and sums[1][1] > sums[0][1]
    # Rescoring again under the same rules stores no score twice, and changes no figure.
    twice = "SELECT count(*), count(DISTINCT (story_id, topic, rules_version)) FROM story_scores"
    ((before, distinct),) = query(config, twice)
    assert before == distinct
    assert main(["rescore", "--config", str(config_path), "--topic", "tr_ru"]) == 0
    assert query(config, twice) == [(before, distinct)] and query(config, by_version) == sums
    # iran_israel was not asked for: still only its one version.
    assert query(
        config, "SELECT count(DISTINCT rules_version) FROM story_scores WHERE topic = 'iran_israel'"
    ) == [(1,)]

    assert main(["rescore", "--config", str(config_path), "--topic", "tr_ru", "--replace"]) == 0
    assert query(
        config, "SELECT DISTINCT rules_version FROM story_scores WHERE topic = 'tr_ru'"
    ) == [(new,)]


def test_rescore_refuses_an_unknown_topic(config, tmp_path, capsys):
    from tensionwatch.cli import main

    run_cycle(config)
    assert main(["rescore", "--config", str(tmp_path / "config.yaml"), "--topic", "nope"]) == 1
    assert "no topic nope in the config" in capsys.readouterr().err


def test_a_cycle_after_a_rule_change_says_history_needs_rescoring(config, tmp_path):
    run_cycle(config)
    config_path = tmp_path / "config.yaml"
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    raw["topics"]["iran_israel"]["title_boost"] = 2
    config_path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    changed = load_config(config_path)
    assert run_cycle(changed).stale_topics == ["iran_israel"]
    assert run_cycle(changed).stale_topics == ["iran_israel"]  # until rescored
    from tensionwatch.rescoring import rescore

    rescore(Store.from_config(changed), changed, ["iran_israel"])
    assert run_cycle(changed).stale_topics == []


def test_when_no_parser_process_can_start_every_body_fails_and_the_cycle_is_stored(
    config, monkeypatch
):
    # Running out of processes cannot be staged safely as root (RLIMIT_NPROC binds no root
    # process), so the pool's start fails by hand, as fork would.
    import tensionwatch.cycle

    def no_processes(*args, **kwargs):
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(tensionwatch.cycle, "feed_workers", no_processes)
    report = run_cycle(config)
    got = outcomes(config, report.batch.run_id)
    assert got["world"][0] == "error" and "cannot start the parser processes" in got["world"][3]
    assert query(config, "SELECT count(*) FROM runs") == [(1,)]
    # Nothing was advanced: the next cycle, with processes back, fetches and stores everything.
    monkeypatch.undo()
    assert len(run_cycle(config).new_story_ids) == 24
