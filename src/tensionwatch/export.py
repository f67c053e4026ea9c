"""`tensionwatch export --parquet DIR`: the stored data as Parquet, partitioned by day.

Stories, scores, events and the daily index go to DIR/<table>/day=YYYY-MM-DD/*.parquet, read
from the read copy when there is one (so a long export never holds the file the cycles write).
A table's folder is replaced whole: an export is a snapshot, not an append.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from tensionwatch.errors import TensionwatchError
from tensionwatch.store import Store, load_statements, sql_dir

TABLES = ("stories", "story_scores", "story_events", "topic_daily")


def export_parquet(store: Store, folder: Path) -> dict[str, int]:
    """Write every table; returns the rows written per table."""
    statements = load_statements(sql_dir() / "export.sql")
    folder = folder.resolve()
    quoted = str(folder).replace("'", "''")
    written = {}
    with store.reading() as con:  # no database: nothing is created
        folder.mkdir(parents=True, exist_ok=True)
        for table in TABLES:
            target = folder / table
            if target.exists():
                shutil.rmtree(target)
            try:
                rows = con.execute(statements[table].replace("{dir}", quoted)).fetchall()
            except duckdb.Error as exc:
                raise TensionwatchError(f"export of {table} failed: {exc}") from None
            written[table] = int(rows[0][0]) if rows else 0
    return written
