"""Every command the CLI offers is documented in the README, and every table and view too."""

import re

from tensionwatch.cli import build_parser
from tensionwatch.store import Store
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_command_is_in_the_readme():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    for name in commands:
        assert f"`tensionwatch {name}" in README, name


def test_every_table_and_view_is_in_the_readme(tmp_path):
    store = Store(tmp_path / "docs.duckdb")
    with store.connect() as con:
        store.migrate(con)
        existing = {
            row[0]
            for row in con.execute(
                "SELECT table_name FROM duckdb_tables() UNION SELECT view_name FROM duckdb_views()"
            ).fetchall()
        }
    names = set()
    for sql in [
        *(ROOT / "sql" / "migrations").glob("*.sql"),
        *(ROOT / "sql" / "views").glob("*.sql"),
    ]:
        text = sql.read_text(encoding="utf-8")
        names |= set(re.findall(r"CREATE (?:TABLE|VIEW) (\w+)", text))
    assert names >= {"stories", "story_scores", "topic_daily", "rule_versions", "topic_trend"}
    for name in names & existing:  # a table a migration makes only to copy a table into
        assert f"`{name}`" in README, name


def test_every_column_of_every_table_and_view_is_in_the_readme(tmp_path):
    store = Store(tmp_path / "docs.duckdb")
    with store.connect() as con:
        store.migrate(con)
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
        ).fetchall()
    assert ("topic_daily", "poor_coverage") in columns
    missing = [f"{table}.{column}" for table, column in columns if f"`{column}`" not in README]
    assert not missing
