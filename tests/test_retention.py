"""Retention: a prune removes the story text and fetch logs config.yaml's `retention` says are
old enough, and nothing else; what was made from them (scores, the daily index and its
coverage) stays, also through a later rescore. A database written by the cycle's own storage
path (Store.store_cycle) over 400 days: one cycle every ten days, three feeds, a wire story
carried by two outlets, and a feed that added its archive two days ago."""

import hashlib
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
import yaml

from tensionwatch.cli import main
from tensionwatch.config import load_config
from tensionwatch.cycle import CycleBatch, FeedOutcome
from tensionwatch.parse import Story
from tensionwatch.retention import prune, prune_if_due
from tensionwatch.score import compile_topics, score_story
from tensionwatch.store import Store
from tests.conftest import ROOT, write_config

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
NOW = TODAY + timedelta(hours=12)
FEEDS = ("wire", "daily", "haber")
TEXT_DAYS, FETCH_DAYS = 120, 60  # the defaults' minimum is 58 days (the alert detector)
TEXT_BEFORE, FETCHES_BEFORE = TODAY - timedelta(days=TEXT_DAYS), TODAY - timedelta(days=FETCH_DAYS)
DAYS_AGO = range(400, -1, -10)
# Every table is kept as it is, but for the columns a prune empties and the rows it removes.
PRUNED = {"stories", "story_events", "fetches", "prunes"}


def summary(n: int) -> str:
    """A story's text: 4,000 characters that compress as little as prose does."""
    words = (hashlib.sha256(f"{n}-{i}".encode()).hexdigest()[:7] for i in range(500))
    return f"Officials said on day {n} that " + " ".join(words)


def build(tmp_path, retention=None, read_copy=True):
    feeds = [{"name": f, "url": f"http://127.0.0.1:9/{f}.xml", "outlet": f.title(),
              "language": "tr" if f == "haber" else "en"} for f in FEEDS]  # fmt: skip
    retention = retention or {"story_text_days": TEXT_DAYS, "fetch_log_days": FETCH_DAYS}
    config = load_config(
        write_config(tmp_path, feeds, retention=retention, storage={"read_copy": read_copy})
    )
    store = Store.from_config(config)
    rules = compile_topics(config.topics)
    versions = {n: t.rules_version() for n, t in config.topics.items()}
    serial = 0

    def story(feed, title, at, seen):
        nonlocal serial
        serial += 1
        sid = hashlib.sha256(f"story-{serial}".encode()).hexdigest()[:16]
        text = summary(serial)
        scores = [(sid, s) for s in score_story(rules, title, text, "en")]
        return Story(
            sid, feed, title, text, f"https://x.test/{sid}", sid, at, seen, at, "en"
        ), scores

    for days in DAYS_AGO:
        day = TODAY - timedelta(days=days)
        seen = day + timedelta(hours=13)
        made = [
            story("wire", f"Iran warns Israel of missile strikes near port {days}", day + timedelta(hours=8), seen),
            story("daily", f"Iran warns Israel of missile strikes near port {days} - Daily", day + timedelta(hours=9), seen),
            story("daily", f"City council approves budget for parks {days}", day + timedelta(hours=10), seen),
        ]  # fmt: skip
        outcomes = [
            FeedOutcome(f"{days}-{f}", f, f"http://127.0.0.1:9/{f}.xml", day + timedelta(hours=12),
                        "error" if f == "haber" and days % 20 else "ok", 10, 1, 100)
            for f in FEEDS
        ]  # fmt: skip
        batch = CycleBatch(f"run-{days}", seen, seen, versions, outcomes,
                           [s for s, _ in made], [x for _, sc in made for x in sc])  # fmt: skip
        store.store_cycle(config, batch)
    # A feed added two days ago with its archive: a story of 300 days ago, first seen now.
    seen = TODAY - timedelta(days=2) + timedelta(hours=14)
    old, scores = story(
        "wire", "Iran warns Israel over tanker seizure", TODAY - timedelta(days=300), seen
    )
    store.store_cycle(config, CycleBatch("run-archive", seen, seen, versions, [], [old], scores))
    return config, old.story_id


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive")
    config, archived = build(folder)
    return config, archived


@pytest.fixture
def archive(built, tmp_path):
    """The built database in a copy of its own, with the same config."""
    config, archived = built
    shutil.copy(config.database_path, tmp_path / "tw.duckdb")
    raw = yaml.safe_load((config.base_dir / "config.yaml").read_text(encoding="utf-8"))
    raw["storage"]["path"] = str(tmp_path / "tw.duckdb")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_config(tmp_path / "config.yaml"), archived


def tables(path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return {n: con.execute(f"SELECT * FROM {n} ORDER BY ALL").fetchall() for n in names}


def query(path, sql, params=None):
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchall()


DAILY = "SELECT * FROM topic_daily_by_version ORDER BY ALL"


def test_a_prune_removes_exactly_what_retention_says(archive):
    config, archived = archive
    path = config.database_path
    before, daily = tables(path), query(path, DAILY)

    report = prune(Store.from_config(config), config, now=NOW)

    after = tables(path)
    for name in set(before) - PRUNED:
        assert after[name] == before[name], name
    # Stories: the text of those that happened and were first seen before the horizon, only.
    gone = {row[0] for row in before["stories"] if max(row[8], row[9]) < TEXT_BEFORE}
    assert len(gone) == 3 * len([d for d in DAYS_AGO if d > TEXT_DAYS]) and archived not in gone
    expected = [(*row[:4], None, *row[5:]) if row[0] in gone else row for row in before["stories"]]
    assert sorted(after["stories"]) == sorted(expected)
    # Grouping's headline words of the stories whose text went; the groups themselves stay.
    expected = [(*row[:6], None) if row[4] < TEXT_BEFORE else row for row in before["story_events"]]
    assert sorted(after["story_events"]) == sorted(expected)
    assert [row[6] for row in after["story_events"] if row[0] == archived] == [None]
    # Fetch logs from the horizon on, whole UTC days.
    assert after["fetches"] == [row for row in before["fetches"] if row[5] >= FETCHES_BEFORE]
    assert len(after["fetches"]) == 3 * len([d for d in DAYS_AGO if d <= FETCH_DAYS])
    assert query(path, DAILY) == daily  # the index, its coverage and the old versions: as they were
    assert (report.summaries, report.title_words) == (len(gone), len(gone) + 1)
    assert report.fetches == len(before["fetches"]) - len(after["fetches"])
    assert (report.story_text_before, report.fetch_logs_before) == (TEXT_BEFORE, FETCHES_BEFORE)
    assert after["prunes"] == [(NOW, TEXT_BEFORE, FETCHES_BEFORE, *[report.summaries,
                                report.title_words, report.fetches])]  # fmt: skip
    # Readers see it too: the read copy was published afterwards.
    store = Store.from_config(config)
    with store.reading() as con:
        assert store.reader_path() == store.read_copy_path
        assert con.execute("SELECT count(*) FROM stories WHERE summary IS NULL").fetchall() == [
            (len(gone),)
        ]


def test_coverage_of_pruned_days_survives_a_later_rescore(archive, capsys):
    config, _ = archive
    path = config.database_path
    daily = query(path, DAILY)
    assert any(row[15:17] == (2, 3) for row in daily)  # the Turkish feed failed: coverage 2/3
    prune(Store.from_config(config), config, now=NOW)

    # rescore rebuilds every trend table from the history, fetches included.
    assert main(["rescore", "--config", str(config.base_dir / "config.yaml")]) == 0
    assert query(path, DAILY) == daily
    pruned_days = [r for r in daily if r[2] < FETCHES_BEFORE and r[17] is not None]
    assert pruned_days  # coverage of days with no fetch logs left is still known
    assert "stories up to" in capsys.readouterr().out  # it says it left some as they were


def test_a_rescore_under_new_rules_leaves_stories_without_text_as_they_were(archive, capsys):
    config, _ = archive
    path = config.database_path
    prune(Store.from_config(config), config, now=NOW)
    old_version = config.topics["iran_israel"].rules_version()
    config_file = config.base_dir / "config.yaml"
    raw = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    raw["topics"]["iran_israel"]["signals"][0]["weight"] += 1
    config_file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    new_version = load_config(config_file).topics["iran_israel"].rules_version()

    assert main(["rescore", "--replace", "--config", str(config_file)]) == 0

    out = capsys.readouterr().out
    without_text = query(path, "SELECT story_id FROM stories WHERE summary IS NULL")
    assert f"{len(without_text)} stories up to" in out and "a prune removed their text" in out
    versions = dict(
        query(
            path,
            "SELECT s.summary IS NULL, list(DISTINCT sc.rules_version) FROM stories AS s "
            "JOIN story_scores AS sc USING (story_id) WHERE sc.topic = 'iran_israel' GROUP BY 1",
        )
    )
    assert versions == {True: [old_version], False: [new_version]}  # --replace kept the former
    assert query(path, "SELECT history_stale FROM rule_versions WHERE is_current AND topic = ?",
                 ["iran_israel"]) == [(False,)]  # fmt: skip


def test_prune_if_due_prunes_once_a_period(archive):
    config, _ = archive
    store = Store.from_config(config)
    first = prune_if_due(store, config, now=NOW)
    assert first is not None and first.fetches > 0
    assert prune_if_due(store, config, now=NOW + timedelta(hours=23)) is None
    back = prune_if_due(store, config, now=NOW - timedelta(days=3))  # the clock was set back
    assert back is not None and (back.fetches, back.summaries) == (0, 0)
    day_later = prune_if_due(store, config, now=NOW + timedelta(hours=24))
    assert day_later is not None and (day_later.fetches, day_later.summaries) == (3, 3)
    assert prune_if_due(store, config, now=NOW + timedelta(hours=47)) is None
    assert prune_if_due(store, config, now=NOW + timedelta(hours=48)) is not None
    assert [
        row[0] for row in query(config.database_path, "SELECT pruned_at FROM prunes ORDER BY rowid")
    ] == [NOW + timedelta(hours=h) for h in (0, -72, 24, 48)]


def test_prune_if_due_does_nothing_when_everything_is_kept(archive):
    config, _ = archive
    raw = yaml.safe_load((config.base_dir / "config.yaml").read_text(encoding="utf-8"))
    raw["retention"] = {"story_text_days": None, "fetch_log_days": None}
    (config.base_dir / "config.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = load_config(config.base_dir / "config.yaml")
    before = tables(config.database_path)
    assert prune_if_due(Store.from_config(config), config, now=NOW) is None
    report = prune(Store.from_config(config), config, now=NOW)  # by hand: nothing to remove
    assert (report.summaries, report.title_words, report.fetches) == (0, 0, 0)
    after = tables(config.database_path)
    assert {n: rows for n, rows in after.items() if n != "prunes"} == {
        n: rows for n, rows in before.items() if n != "prunes"
    }


def test_dry_run_counts_what_a_prune_removes_and_changes_nothing(archive, capsys):
    config, _ = archive
    path = config.database_path
    config_file = str(config.base_dir / "config.yaml")
    fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()

    assert main(["prune", "--dry-run", "--config", config_file]) == 0

    dry = capsys.readouterr().out
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fingerprint
    assert not Store.from_config(config).read_copy_path.exists()  # nothing published either
    assert "Would remove" in dry and "a dry run changes nothing" in dry
    assert main(["prune", "--config", config_file]) == 0
    done = capsys.readouterr().out
    counts = [line.split()[0] for line in dry.splitlines() if line.startswith("  ")]
    assert counts == [line.split()[0] for line in done.splitlines() if line.startswith("  ")]
    old_text, old_fetches = [len([d for d in DAYS_AGO if d > n]) for n in (TEXT_DAYS, FETCH_DAYS)]
    assert counts == [str(3 * old_text), str(3 * old_text + 1), str(3 * old_fetches)]
    assert "Removed: story text before" in done and "MB before" in done


def test_a_locked_database_is_one_line_and_exit_1(archive, capsys):
    config, _ = archive
    before = tables(config.database_path)
    holder = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "storage_child.py"), "hold",
         str(config.database_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert main(["prune", "--config", str(config.base_dir / "config.yaml")]) == 1
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout:
            holder.stdout.close()
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert (
        line.startswith("tensionwatch: ") and "is locked by" in line and f"PID {holder.pid}" in line
    )
    assert tables(config.database_path) == before


def test_no_database_yet_is_one_line_and_exit_1_and_none_is_made(tmp_path, capsys):
    config_file = write_config(tmp_path, [{"name": "wire", "url": "http://127.0.0.1:9/w.xml"}])
    config = load_config(config_file)
    for extra in ([], ["--dry-run"], ["--compact"]):
        assert main(["prune", "--config", str(config_file), *extra]) == 1
        (line,) = capsys.readouterr().err.splitlines()
        assert "no database at" in line and "tensionwatch run" in line
    assert prune_if_due(Store.from_config(config), config) is None
    assert not config.database_path.exists()


def test_bad_retention_config_names_the_key(tmp_path, capsys):
    feeds = [{"name": "wire", "url": "http://127.0.0.1:9/wire.xml"}]
    cases = {
        "retention.fetch_log_days: must be at least 58": {"fetch_log_days": 30},
        "retention.story_text_days: must be at least 58": {"story_text_days": 7},
        "retention.story_text_days: must be a whole number": {"story_text_days": "a year"},
        "retention.prune_every_hours: must be greater than 0": {"prune_every_hours": 0},
        "retention.keep_text: unknown key": {"keep_text": True},
    }
    for expected, retention in cases.items():
        config_file = write_config(tmp_path, feeds, retention=retention)
        assert main(["prune", "--config", str(config_file)]) == 2
        assert expected in capsys.readouterr().err, expected
    # A shorter baseline lowers the minimum; event grouping's window still counts for the text.
    config_file = write_config(
        tmp_path, feeds, alerts={"baseline_days": 3, "seasonal_weeks": 0},
        events={"window_hours": 24 * 9}, retention={"story_text_days": 5, "fetch_log_days": 5},
    )  # fmt: skip
    assert main(["prune", "--dry-run", "--config", str(config_file)]) == 2
    err = capsys.readouterr().err
    assert "retention.story_text_days: must be at least 10" in err and "events.window_hours" in err
    assert "fetch_log_days" not in err


def test_explain_says_when_a_story_s_text_was_pruned(archive, capsys):
    config, _ = archive
    prune(Store.from_config(config), config, now=NOW)
    ((story_id,),) = query(
        config.database_path, "SELECT story_id FROM stories WHERE summary IS NULL LIMIT 1"
    )
    assert main(["explain", story_id, "--config", str(config.base_dir / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "Iran warns Israel" in out and "summary was removed" in out


def test_compact_returns_the_space_to_the_disk_and_keeps_everything(archive, capsys, tmp_path):
    config, _ = archive
    path = config.database_path
    pruned_copy = tmp_path / "pruned_only.duckdb"
    shutil.copy(path, pruned_copy)
    prune(Store(pruned_copy), config, now=NOW)  # the same prune, not compacted
    size_before = path.stat().st_size
    assert pruned_copy.stat().st_size >= size_before * 0.9  # a prune alone keeps the file's size

    assert main(["prune", "--compact", "--config", str(config.base_dir / "config.yaml")]) == 0

    out = capsys.readouterr().out
    assert path.stat().st_size < size_before * 0.7, out
    compacted, pruned = tables(path), tables(pruned_copy)
    assert {n: r for n, r in compacted.items() if n != "prunes"} == {
        n: r for n, r in pruned.items() if n != "prunes"
    }
    assert query(path, DAILY) == query(pruned_copy, DAILY)  # views and macros came along
    leftovers = [p.name for p in path.parent.iterdir() if ".compacting" in p.name]
    assert not leftovers
    read_copy = Store.from_config(config).read_copy_path
    assert read_copy.stat().st_size == path.stat().st_size  # readers got the small file too
    # The compacted file is a working database: the next cycle stores into it.
    store = Store.from_config(config)
    versions = {n: t.rules_version() for n, t in config.topics.items()}
    store.store_cycle(config, CycleBatch("run-after", NOW, NOW, versions, [], [], []))
    assert query(path, "SELECT count(*) FROM runs WHERE run_id = 'run-after'") == [(1,)]


def test_feed_health_counts_stories_per_day_over_the_fetch_logs_kept(archive):
    config, _ = archive
    path = config.database_path
    with duckdb.connect(str(path)) as con:  # the feeds were added when the history began
        con.execute("UPDATE feeds SET added_at = ?", [TODAY - timedelta(days=400)])
    per_day = "SELECT feed_id, stories_per_day FROM feed_health ORDER BY feed_id"
    before = dict(query(path, per_day))
    assert before["daily"] == pytest.approx(2 * len(DAYS_AGO) / 400, rel=0.05)
    prune(Store(path), config, now=NOW)
    after = dict(query(path, per_day))
    for feed in ("wire", "daily"):  # 60 days of fetches kept, as many stories a day as before
        assert after[feed] == pytest.approx(before[feed], rel=0.25), feed
    assert after["haber"] == before["haber"] == 0


def test_a_backtest_reaching_before_the_pruned_fetch_logs_says_so(archive, capsys):
    config, _ = archive
    config_file = str(config.base_dir / "config.yaml")
    since = (TODAY - timedelta(days=30)).date().isoformat()
    assert main(["alerts", "--config", config_file, "backtest", "--since", since]) == 0
    assert "pruned" not in capsys.readouterr().err  # nothing pruned yet
    prune(Store.from_config(config), config, now=NOW)
    assert main(["alerts", "--config", config_file, "backtest", "--since", since]) == 0
    err = capsys.readouterr().err  # 30 days back and the detector's 56 days before: pruned
    assert f"fetch logs before {FETCHES_BEFORE:%Y-%m-%d} were pruned" in err
    later = (TODAY - timedelta(days=2)).date().isoformat()
    assert main(["alerts", "--config", config_file, "backtest", "--since", later]) == 0
    assert "pruned" not in capsys.readouterr().err  # its reach starts after the horizon


def test_a_database_of_an_earlier_release_migrates_with_its_fetches(tmp_path):
    from tests.conftest import old_database

    path = tmp_path / "old.duckdb"
    with old_database(path, 8) as con:
        con.execute(
            "INSERT INTO fetches SELECT 'f' || i, 'r', 'wire', 'u', NULL, TIMESTAMPTZ '2026-01-01'"
            " + to_hours(i), 10, 1, 'ok', 200, 100, 3, 1, NULL, NULL FROM range(100) t(i)"
        )
        before = con.execute("SELECT * FROM fetches ORDER BY ALL").fetchall()
    store = Store(path)
    with store.connect() as con:
        store.migrate(con)
        kept = "SELECT * EXCLUDE (next_due_at, due_reason) FROM fetches ORDER BY ALL"  # 009's
        assert con.execute(kept).fetchall() == before
        keys = con.execute(
            "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
        ).fetchall()
        assert ("fetches",) not in keys and ("stories",) in keys  # stories keeps its key
        con.execute(
            "INSERT INTO stories VALUES ('s', 'wire', 'r', 'A headline', NULL, NULL, NULL, NULL,"
            " now(), now(), 'en')"
        )  # a story whose text was pruned
        assert con.execute("SELECT count(*) FROM prunes").fetchall() == [(0,)]


def test_a_compaction_that_fails_leaves_the_pruned_database_as_it_was(archive, capsys, tmp_path):
    config, _ = archive
    path = config.database_path
    pruned_copy = tmp_path / "pruned_only.duckdb"
    shutil.copy(path, pruned_copy)
    prune(Store(pruned_copy), config, now=NOW)
    path.with_name(path.name + ".compacting").mkdir()  # something in the way of the new file

    assert main(["prune", "--compact", "--config", str(config.base_dir / "config.yaml")]) == 1

    out = capsys.readouterr().out
    assert "Removed: story text" in out and "not compacted" in out
    assert "the database is as it was after pruning" in out
    after, pruned = tables(path), tables(pruned_copy)
    assert {n: r for n, r in after.items() if n != "prunes"} == {
        n: r for n, r in pruned.items() if n != "prunes"
    }
    assert len(after["prunes"]) == 1  # the prune stands
