"""Where an unattended installation stands, for `tensionwatch status`: whether `serve` runs
the schedule and whether a cycle is running now, the latest cycles and their outcome, whether the network looks down, the feeds that are failing, waiting, retired
or moved (with when each is asked next and why), alert deliveries not sent yet, pending
batches, the database's size and the rules versions. Read from the read copy
(Store.reading) and the pending folder; written nowhere. Plain values for the CLI to print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from tensionwatch.config import Config
from tensionwatch.cycle import no_feed_answered
from tensionwatch.guard import held_by
from tensionwatch.serving import running_server
from tensionwatch.store import Store, load_statements, rows_as_dicts, sql_dir

SQL = load_statements(sql_dir() / "status.sql")
POLLING_MIGRATION = 9  # feeds' polling state; before it, status shows what it can


@dataclass(frozen=True, slots=True)
class Status:
    database: Path
    database_bytes: int  # the file and its write-ahead log
    read_from: Path  # the read copy, or the database when there is none
    schema_version: int
    pending_batches: int  # cycles kept on disk, not stored yet
    now: datetime
    runs: list[dict[str, Any]] = field(default_factory=list)  # newest first
    no_feed_answered: str | None = None  # of the latest cycle: "network", "failed" or None
    feeds: list[dict[str, Any]] = field(default_factory=list)  # needing attention
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # not sent yet
    rules: list[dict[str, Any]] = field(default_factory=list)  # current version per topic
    serve_api: str | None = None  # the Prefect API of the `serve` that runs the schedule, if up
    cycle_running: str | None = None  # who holds the cycle lock now (guard.held_by), if anyone

    @property
    def last_stored_at(self) -> datetime | None:
        return self.runs[0]["stored_at"] if self.runs else None


def read_status(store: Store, config: Config, runs: int = 5, now: datetime | None = None) -> Status:
    """The installation's status; a StorageError (one line) when there is no database yet."""
    now = now or datetime.now(UTC)
    with store.reading() as con:
        ((version,),) = con.execute(SQL["schema_version"]).fetchall()
        latest = _rows(con, "latest_runs", {"n": runs}) or _rows(
            con, "latest_runs_before_009", {"n": runs}
        )
        fetches = con.execute(SQL["latest_fetches"]).fetchall()
        feeds = _rows(con, "feeds_needing_attention", {"feed_id": [f.name for f in config.feeds]})
        deliveries = _rows(con, "open_deliveries")
        rules = _rows(con, "rule_versions")
    size = sum(p.stat().st_size for p in (store.path, _wal(store.path)) if p.exists())
    return Status(
        database=store.path,
        database_bytes=size,
        read_from=store.reader_path(),
        schema_version=int(version),
        pending_batches=store.pending_count(),
        now=now,
        runs=latest,
        no_feed_answered=no_feed_answered(fetches),
        feeds=feeds,
        deliveries=deliveries,
        rules=rules,
        serve_api=running_server(config),
        cycle_running=held_by(store.path),
    )


def _rows(
    con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """A statement's rows; none from a database older than what it reads (before 008's
    outbox or 009's polling state: the next cycle migrates it)."""
    try:
        return rows_as_dicts(con.execute(SQL[name], params or {}))
    except (duckdb.CatalogException, duckdb.BinderException):
        return []


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")
