"""Retention: story text and fetch logs are kept as long as config.yaml says, then pruned.

What a prune promises:
- It removes two kinds of history only, by whole UTC days: a story's text (`stories.summary`
  becomes NULL, and `story_events.title_words`, the headline words grouping compared, go
  with it) `retention.story_text_days` after the story happened and was first seen, and the
  `fetches` rows older than `retention.fetch_log_days`. Scores, titles, links, events, runs,
  alerts and the trend tables are kept for good: the daily index of a pruned day reads as it
  did before.
- Nothing recomputed later loses what the removed rows made: the polling buckets (coverage)
  of pruned days are never recomputed from the fetches left (Store.refresh_trend_tables reads
  the horizon recorded in `prunes`), and rescore leaves a story without its text, with the
  scores it had (rescoring.py).
- One transaction, then CHECKPOINT, under the write lock a cycle takes (Store.connect): a
  database held by another process past `storage.lock_timeout_seconds` raises
  DatabaseLockedError and nothing changes. The read copy is refreshed afterwards.
- What it removed comes back as a plain value (PruneReport). A dry run counts the same rows,
  by the same conditions (sql/retention.sql), through a read-only connection.
- The file keeps its size: DuckDB reuses the freed blocks for what later cycles write, so a
  database pruned on schedule stops growing by its text and logs but does not shrink.
  `compact=True` rewrites it into a new file (COPY FROM DATABASE) and swaps that in, under the
  same lock, only once it holds the same tables, views and rows; until then the old file is
  untouched. A failed compaction is a note: the prune before it stands.

`prune_if_due` is the scheduled step (the flow calls it after a cycle): it prunes at most once
every `retention.prune_every_hours`, remembering the last prune in the database.
"""

from __future__ import annotations

import os
import time
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from tensionwatch.config import Config
from tensionwatch.errors import StorageError
from tensionwatch.store import Store, load_statements, sql_dir

SQL = load_statements(sql_dir() / "retention.sql")


@dataclass(frozen=True, slots=True)
class PruneReport:
    pruned_at: datetime
    story_text_before: datetime | None  # text of stories before this went; None: kept for good
    fetch_logs_before: datetime | None  # fetches before this went; None: kept for good
    summaries: int  # story summaries removed (or, in a dry run, that would be)
    title_words: int  # headline-word lists of grouped stories removed
    fetches: int  # fetch rows removed
    bytes_before: int  # the database file (and its write-ahead log), before
    bytes_after: int  # …and after (the same in a dry run)
    seconds: float
    dry_run: bool = False
    compacted: bool = False
    notes: list[str] = field(default_factory=list)  # a failed compaction, a stale read copy


def horizons(config: Config, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The UTC midnights before which story text and fetch logs go (None: kept for good)."""
    today = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    kept = config.retention
    return (
        None if kept.story_text_days is None else today - timedelta(days=kept.story_text_days),
        None if kept.fetch_log_days is None else today - timedelta(days=kept.fetch_log_days),
    )


def prune(
    store: Store,
    config: Config,
    now: datetime | None = None,
    dry_run: bool = False,
    compact: bool = False,
) -> PruneReport:
    """Remove the story text and fetch logs older than `retention` says, as of `now`."""
    report = _prune(store, config, now or datetime.now(UTC), dry_run, compact, every=None)
    assert report is not None  # only a prune that may wait for its period returns None
    return report


def prune_if_due(store: Store, config: Config, now: datetime | None = None) -> PruneReport | None:
    """The scheduled prune: prune unless the last one was less than
    `retention.prune_every_hours` ago (None then, when retention keeps everything, and when
    there is no database yet). Raises StorageError (DatabaseLockedError: the file is held
    elsewhere past storage.lock_timeout_seconds) when the database cannot be written; nothing
    is recorded then, so the next call tries again. The flow calls it after a cycle."""
    kept = config.retention
    if (kept.story_text_days is None and kept.fetch_log_days is None) or not store.path.exists():
        return None
    every = timedelta(hours=kept.prune_every_hours)
    return _prune(store, config, now or datetime.now(UTC), False, False, every=every)


def pruned_before(store: Store) -> tuple[datetime | None, datetime | None]:
    """Up to when prunes removed story text and fetch logs (None: never), for readers of old
    history; read where readers read (Store.reading). A database (or read copy) from before
    migration 010 has never been pruned."""
    with store.reading() as con:
        try:
            ((text, fetches),) = con.execute(SQL["horizons"]).fetchall()
        except duckdb.CatalogException:
            return None, None
    return text, fetches


def database_bytes(path: Path) -> int:
    """The size of a DuckDB file with its write-ahead log (0 when there is none)."""
    return sum(p.stat().st_size for p in (path, _wal(path)) if p.exists())


def _prune(
    store: Store,
    config: Config,
    now: datetime,
    dry_run: bool,
    compact: bool,
    every: timedelta | None,
) -> PruneReport | None:
    started = time.monotonic()
    text_before, fetches_before = horizons(config, now)
    horizon = {"story_text_before": text_before, "fetch_logs_before": fetches_before}
    bytes_before = database_bytes(store.path)
    notes: list[str] = []
    compacted = False
    if not store.path.exists():  # never start an empty database just to prune it
        raise StorageError(f"no database at {store.path} yet: run `tensionwatch run` first")
    try:
        with store.connect(read_only=dry_run) as con:
            if dry_run:
                counts = _count(con, horizon)
            else:
                store.migrate(con)
                if every is not None and not _due(con, now, every):
                    return None
                counts = _remove(con, horizon, now)
                con.execute("CHECKPOINT")  # the freed blocks, free in the file
                if compact:
                    failed = _compact(store, con)
                    compacted = failed is None
                    notes += [failed] if failed else []
    except duckdb.Error as exc:
        raise store.explain_error(exc, "prune") from None
    if store.read_copy and not dry_run:
        store.publish_read_copy(notes)  # readers lose the pruned text too, and see the size
    return PruneReport(
        pruned_at=now,
        story_text_before=text_before,
        fetch_logs_before=fetches_before,
        summaries=counts["summaries"],
        title_words=counts["title_words"],
        fetches=counts["fetches"],
        bytes_before=bytes_before,
        bytes_after=database_bytes(store.path),
        seconds=time.monotonic() - started,
        dry_run=dry_run,
        compacted=compacted,
        notes=notes,
    )


_KINDS = {  # what is counted or removed → the horizon it goes by
    "summaries": "story_text_before",
    "title_words": "story_text_before",
    "fetches": "fetch_logs_before",
}


def _count(con: duckdb.DuckDBPyConnection, horizon: dict[str, datetime | None]) -> dict[str, int]:
    counts = {}
    for kind, key in _KINDS.items():
        if horizon[key] is None:
            counts[kind] = 0
            continue
        ((counts[kind],),) = con.execute(SQL[kind], {key: horizon[key]}).fetchall()
    return counts


def _remove(
    con: duckdb.DuckDBPyConnection, horizon: dict[str, datetime | None], now: datetime
) -> dict[str, int]:
    """Remove what is past the horizons and record the prune, in one transaction."""
    counts = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for kind, key in _KINDS.items():
            if horizon[key] is None:
                counts[kind] = 0
                continue
            ((counts[kind],),) = con.execute(SQL[f"remove_{kind}"], {key: horizon[key]}).fetchall()
        con.execute(SQL["record_prune"], {"pruned_at": now, **horizon, **counts})
        con.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):  # after a failed COMMIT there is nothing to roll back
            con.execute("ROLLBACK")
        raise
    return counts


def _due(con: duckdb.DuckDBPyConnection, now: datetime, every: timedelta) -> bool:
    rows = con.execute(SQL["last_pruned_at"]).fetchall()
    last = rows[0][0] if rows else None
    # A last prune "in the future" (the clock was set back) must not stop pruning for months.
    return last is None or not last <= now < last + every


def _compact(store: Store, con: duckdb.DuckDBPyConnection) -> str | None:
    """Rewrite the database into `<file>.compacting` and swap it in, under the write lock that
    `con` holds. The new file replaces the old one only once it holds the same tables, views,
    macros and rows. Returns why it could not (the old file is then as it was), or None once
    swapped in; `con` is closed then, its file gone from the name."""
    fresh = store.path.with_name(store.path.name + ".compacting")
    ((name,),) = con.execute("SELECT current_database()").fetchall()
    alias = "compacting" if name != "compacting" else "compacting_copy"
    check: duckdb.DuckDBPyConnection | None = None
    try:
        for leftover in (fresh, _wal(fresh)):  # of a compaction that was killed
            leftover.unlink(missing_ok=True)
        con.execute(f"ATTACH $path AS {alias}", {"path": str(fresh)})
        try:
            # Identifiers cannot be bound: the database's own name, quoted as DuckDB quotes.
            con.execute(f"COPY FROM DATABASE {_identifier(name)} TO {alias}")
        finally:
            con.execute(f"DETACH {alias}")
        # Held open (read-only, so no cycle can write to it) until the old file is closed.
        check = duckdb.connect(str(fresh), read_only=True)
        differs = _contents(con) != _contents(check)
        if differs:
            raise StorageError("the compacted copy does not hold what the database holds")
        os.replace(fresh, store.path)
        _sync_folder(store.path.parent)
    except (duckdb.Error, OSError, StorageError) as exc:
        if check is not None:
            check.close()
        for leftover in (fresh, _wal(fresh)):
            with suppress(OSError):  # what is in the way is said below; the database is intact
                leftover.unlink(missing_ok=True)
        text = " ".join(str(store.explain_error(exc, "compact")).split())[:400]
        return f"not compacted: {text}; the database is as it was after pruning"
    con.close()  # the old file, no longer named: closing it cannot touch the new one
    check.close()
    return None


def _contents(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int | None]]:
    """Every table, view and macro of the connection's database, with each table's rows."""
    found = []
    for kind, name in con.execute(SQL["catalog"]).fetchall():
        rows = None
        if kind == "table":
            ((rows,),) = con.execute(f"SELECT count(*) FROM {_identifier(name)}").fetchall()
        found.append((kind, name, rows))
    return found


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _sync_folder(folder: Path) -> None:
    """Make the rename durable: the folder's entry, not only the file, on disk."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
