"""`tensionwatch sql` and the query library, on a database built by real cycles."""

import json

import duckdb
import pytest

from tensionwatch.cli import main
from tests.conftest import ROOT
from tests.test_views import index_db  # noqa: F401  (the fixture: real cycles over test feeds)

QUERIES = sorted((ROOT / "sql" / "queries").glob("*.sql"))


def sql(config, *args):
    return main(["sql", "--config", str(config.base_dir / "config.yaml"), *args])


def test_the_library_holds_documented_questions():
    assert len(QUERIES) >= 8
    for path in QUERIES:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("-- ") and "?" in first, path.name  # the question it answers


@pytest.mark.parametrize("path", QUERIES, ids=[p.stem for p in QUERIES])
def test_every_library_query_runs_with_the_cli_and_in_duckdb(index_db, path, capsys):  # noqa: F811
    assert sql(index_db, "--file", str(path), "--format", "json") == 0
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in out.splitlines()]
    # The same file runs as it is in DuckDB (the CLI, a notebook).
    with duckdb.connect(str(index_db.database_path), read_only=True) as con:
        assert len(con.execute(path.read_text(encoding="utf-8")).fetchall()) == len(rows)


def test_library_answers_on_known_feeds(index_db, capsys):  # noqa: F811
    def rows(name):
        assert (
            sql(index_db, "--file", str(ROOT / "sql" / "queries" / name), "--format", "json") == 0
        )
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    events = rows("events_most_outlets.sql")
    assert events[0]["outlets"] == 2 and events[0]["stories"] == 2
    assert "strikes air defence" in events[0]["first_headline"]
    outlets = {r["outlet"]: r for r in rows("outlets_driving_iran_israel_this_week.sql")}
    assert outlets["Daily"]["relevant_stories"] == 2 and outlets["Wire"]["relevant_stories"] == 2
    quiet = {r["feed_id"] for r in rows("feeds_gone_quiet.sql")}
    assert "haber" in quiet and "wire" not in quiet


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM stories",
        "CREATE TABLE mine AS SELECT 1",
        "ATTACH '/tmp/elsewhere.duckdb' AS other",
        "COPY stories TO '/tmp/stories.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
    ],
)
def test_statements_that_write_or_reach_outside_are_refused(index_db, statement, capsys):  # noqa: F811
    assert sql(index_db, statement) == 1
    err = capsys.readouterr().err
    assert err.startswith("tensionwatch: refused:") and err.count("\n") == 1


def test_sql_errors_are_duckdbs_message_and_the_file_is_free_afterwards(index_db, capsys):  # noqa: F811
    assert sql(index_db, "SELEC 1") == 1
    err = capsys.readouterr().err
    assert "Parser Error" in err and "Traceback" not in err and err.count("\n") == 1
    assert sql(index_db, "SELECT count(*) AS n FROM stories") == 0
    assert "5" in capsys.readouterr().out
    with duckdb.connect(str(index_db.database_path)) as writer:  # no lock left behind
        writer.execute("CREATE TABLE scratch (a INTEGER)")


def test_csv_and_parquet_outputs(index_db, tmp_path, capsys):  # noqa: F811
    query = "SELECT topic, bucket, relevant_stories FROM topic_daily ORDER BY topic, bucket"
    csv_path, parquet = tmp_path / "daily.csv", tmp_path / "daily.parquet"
    assert sql(index_db, query, "--format", "csv", "--output", str(csv_path)) == 0
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "topic,bucket,relevant_stories" and len(lines) == 9  # 2 topics × 4 days
    assert sql(index_db, query, "--format", "parquet", "--output", str(parquet)) == 0
    with duckdb.connect() as con:
        assert con.execute(f"SELECT count(*) FROM '{parquet}'").fetchall() == [(8,)]
    assert sql(index_db, query, "--format", "parquet") == 2  # parquet needs --output


def test_feed_text_is_shown_as_text_not_markup(index_db, capsys):  # noqa: F811
    assert sql(index_db, "SELECT '[bold red]alarm[/bold red]' AS title") == 0
    assert "[bold red]alarm[/bold red]" in capsys.readouterr().out


def test_export_writes_parquet_partitioned_by_day(index_db, tmp_path, capsys):  # noqa: F811
    folder = tmp_path / "export"
    config = str(index_db.base_dir / "config.yaml")
    assert main(["export", "--config", config, "--parquet", str(folder)]) == 0
    assert "stories 5" in capsys.readouterr().out
    days = sorted(p.name for p in (folder / "stories").iterdir())
    assert len(days) == 2 and all(d.startswith("day=") for d in days)  # DAY1 and DAY3
    with duckdb.connect() as con:

        def count(table):
            files = f"{folder}/{table}/*/*.parquet"
            return con.execute(
                f"SELECT count(*) FROM read_parquet('{files}', hive_partitioning = true)"
            ).fetchall()[0][0]

        assert count("stories") == 5 and count("story_events") == 5
        assert count("story_scores") == 10 and count("topic_daily") == 8
    # Again: a snapshot, not an append.
    assert main(["export", "--config", config, "--parquet", str(folder)]) == 0
    with duckdb.connect() as con:
        files = f"{folder}/stories/*/*.parquet"
        assert con.execute(f"SELECT count(*) FROM read_parquet('{files}')").fetchall() == [(5,)]
