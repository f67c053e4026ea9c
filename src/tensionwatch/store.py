"""The DuckDB store: migrations, feed state, and one write transaction per stored cycle.

DuckDB lets one process write a file at a time, and a read-write session held elsewhere (an
analyst's DuckDB CLI, say) blocks us. So the cycle reads its feed state through a read-only
connection, which can share the file with other readers, and opens the file for writing only
for its writes. Every cycle's batch goes to the pending queue (pending.py) before the
database is touched and leaves it when its transaction commits: a cycle killed mid-write, a
lock that never frees within `storage.lock_timeout_seconds`, a full disk or a damaged file
loses nothing fetched, and the next cycle that can write stores each kept batch in its own
transaction. Stories, fetches and runs have stable keys, so nothing is stored twice.

Errors from DuckDB are told apart by what they mean for the user: the lock held by another
process (wait, then keep the batch), a damaged or foreign file (say so and what to do; never
start an empty database in its place), a full disk, and a batch DuckDB refuses (set aside).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

import duckdb

from tensionwatch.config import Config, EventSettings
from tensionwatch.cycle import CycleBatch, CycleReport
from tensionwatch.errors import DatabaseDamagedError, DatabaseLockedError, StorageError
from tensionwatch.events import MAX_POSTING, StoryRef, group_events, title_words
from tensionwatch.fetch import FAILED, NOT_MODIFIED, OK, UNCHANGED, FeedState
from tensionwatch.guard import cycle_lock
from tensionwatch.parse import Story
from tensionwatch.pending import PendingQueue, UnreadableBatchError
from tensionwatch.polling import NOT_DUE, RETIRED, WAITING
from tensionwatch.score import TopicScore


def sql_dir() -> Path:
    """sql/ of a source checkout, or the copy packed into an installed wheel."""
    checkout = Path(__file__).resolve().parents[2] / "sql"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("tensionwatch") / "sql"))


def load_statements(path: Path) -> dict[str, str]:
    """Named statements from a .sql file: each starts at a `-- name: NAME` line."""
    statements: dict[str, str] = {}
    for block in re.split(r"^-- name: ", path.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]:
        name, _, body = block.partition("\n")
        statements[name.strip()] = body.strip()
    return statements


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every numbered file in sql/migrations, in order. A line
    `-- include: views/NAME.sql` stands for that file of sql/: each view lives in a file of
    its own, where an analyst reads it, and a migration creates it."""
    found = []
    root = sql_dir()
    for path in sorted((root / "migrations").glob("[0-9][0-9][0-9]_*.sql")):
        text = _INCLUDE.sub(
            lambda m: (root / m.group(1)).read_text(encoding="utf-8"),
            path.read_text(encoding="utf-8"),
        )
        found.append((int(path.name[:3]), path.stem[4:], text))
    return found


_INCLUDE = re.compile(r"^-- include: (views/[\w.]+\.sql)$", re.MULTILINE)


# The migration that adds the trend tables: store.migrate fills them from the history.
TREND_TABLES_MIGRATION = 6
# Up to this many ids a cycle's feeds did not carry last time are looked up one by one in the
# primary key's index: on 10M stories, 50 ids take 0.03 s that way against 0.3 s and 70 MB
# more memory for a pass over every stored id; from a few hundred on, the pass wins.
POINT_LOOKUPS_UP_TO = 300

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.+?)(?:\. See also|$)", re.DOTALL)
# DuckDB's words for a file lock held by another process, and for a damaged or foreign file.
# Matched on whole phrases: "lock" alone is also in "block" (a checksum error names one).
_LOCK_PHRASES = ("Could not set lock on file", "Conflicting lock is held")
_DAMAGE_PHRASES = (
    "not a valid DuckDB database file",
    "Corrupt database file",
    "Could not read enough bytes",
    "does not match stored checksum",
    "database has been invalidated",
)
_DISK_FULL_PHRASES = ("No space left on device", "File too large", "Disk quota exceeded")
# Errors about the file or the machine (a lock, damage, a full disk, I/O, memory): the batch
# is kept for a later cycle. Any other error writing a batch is about what is in the batch,
# and that batch is set aside instead of blocking every later one.
_FILE_ERRORS = (
    duckdb.IOException,
    duckdb.FatalException,
    duckdb.TransactionException,
    duckdb.OutOfMemoryException,
    duckdb.InternalException,
)


def _mentions(exc: BaseException, phrases: tuple[str, ...]) -> bool:
    """Whether DuckDB's message holds one of these phrases (its errors have no finer type)."""
    text = str(exc)
    return any(phrase in text for phrase in phrases)


def _is_about_the_file(exc: BaseException) -> bool:
    return isinstance(exc, _FILE_ERRORS) or _mentions(
        exc, _LOCK_PHRASES + _DAMAGE_PHRASES + _DISK_FULL_PHRASES
    )


def _lock_holder(exc: Exception) -> str:
    match = _LOCK_HOLDER.search(str(exc))
    return match.group(1).strip() if match else "another process"


class _RefusedBatch(Exception):
    """DuckDB refused one batch's rows (see _BATCH_ERRORS)."""


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    # After a failed COMMIT DuckDB has already ended the transaction; a ROLLBACK would raise
    # "no transaction is active" and hide the real error.
    with suppress(duckdb.Error):
        con.execute("ROLLBACK")


class Store:
    def __init__(
        self,
        path: Path,
        lock_timeout: float = 60.0,
        lock_retry: float = 1.0,
        max_pending_bytes: int = 512_000_000,
        events: EventSettings | None = None,
        read_copy: bool = False,
    ):
        self.path = Path(path)
        self.read_copy = read_copy
        self.read_copy_path = self.path.with_name(self.path.stem + ".read" + self.path.suffix)
        self.events = events or EventSettings()
        self.lock_timeout = lock_timeout
        self.lock_retry = lock_retry
        self.pending_dir = self.path.with_name(self.path.name + ".pending")
        self.queue = PendingQueue(self.pending_dir, max_pending_bytes)
        self.sql = load_statements(sql_dir() / "store.sql")

    @classmethod
    def from_config(cls, config: Config) -> Store:
        s = config.storage
        return cls(
            config.database_path,
            s.lock_timeout_seconds,
            s.lock_retry_seconds,
            int(s.max_pending_mb * 1_000_000),
            config.events,
            s.read_copy,
        )

    # -- connections -------------------------------------------------------------------------

    @contextmanager
    def connect(
        self, read_only: bool = False, wait: bool = True, path: Path | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file (or `path`), waiting for another process's lock up to lock_timeout
        seconds."""
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + (self.lock_timeout if wait else 0)
        while True:
            try:
                con = duckdb.connect(str(path or self.path), read_only=read_only)
                break
            except duckdb.Error as exc:
                if not _mentions(exc, _LOCK_PHRASES):
                    raise self.explain_error(exc, "open") from None
                if time.monotonic() >= deadline:
                    raise DatabaseLockedError(
                        f"{self.path} is locked by {_lock_holder(exc)}; waited "
                        f"{self.lock_timeout if wait else 0:g} s (storage.lock_timeout_seconds)"
                    ) from None
                time.sleep(self.lock_retry)
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def cycle_lock(self, what: str = "a cycle") -> AbstractContextManager[None]:
        """One cycle (or watchdog) at a time on this database, across processes (guard.py)."""
        return cycle_lock(self.path, what)

    def explain_error(self, exc: Exception, doing: str) -> StorageError:
        """A DuckDB error as a StorageError that says what is wrong and what to do."""
        if isinstance(exc, StorageError):
            return exc
        text = " ".join(str(exc).split())[:400]
        if _mentions(exc, _DAMAGE_PHRASES):
            return DatabaseDamagedError(
                f"{self.path} is damaged or is not a tensionwatch database ({text}). Nothing "
                f"was written to it. Move it aside (mv {self.path} {self.path}.damaged) and "
                "restore a copy, or let the next cycle start a new database; fetched stories "
                f"wait in {self.pending_dir} until then"
            )
        if _mentions(exc, _DISK_FULL_PHRASES):
            return StorageError(f"cannot {doing} {self.path}: the disk is full ({text})")
        return StorageError(f"cannot {doing} {self.path}: {text}")

    # -- schema ------------------------------------------------------------------------------

    def migrate(self, con: duckdb.DuckDBPyConnection) -> int:
        """Apply pending migrations, each in one transaction with its version record.

        A database that holds tables but no `schema_migrations` is someone else's: it is
        refused, and nothing is written to it.
        """
        tables = {
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
        if tables and "schema_migrations" not in tables:
            raise DatabaseDamagedError(
                f"{self.path} is not a tensionwatch database: it holds tables "
                f"({', '.join(sorted(tables)[:5])}) but no schema_migrations. Nothing was "
                "written to it; set storage.path to another file"
            )
        # fetchall, not fetchone: DuckDB 2 refuses new work while a result is half-read.
        current_version = 0
        if tables:
            ((current,),) = con.execute(
                "SELECT coalesce(max(version), 0) FROM schema_migrations"
            ).fetchall()
            current_version = int(current)
        known = migrations()
        newest = known[-1][0] if known else 0
        if current_version > newest:
            raise StorageError(
                f"{self.path} has schema version {current_version}, newer than this tensionwatch "
                f"knows ({newest}); upgrade tensionwatch or use another storage.path"
            )
        for version, name, sql in known:
            if version <= current_version:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                    " name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
                )
                con.execute(sql)
                if version == TREND_TABLES_MIGRATION:
                    self.rebuild_trend_tables(con)  # filled from the history stored so far
                con.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    [version, name, datetime.now(UTC)],
                )
                con.execute("COMMIT")
            except duckdb.Error as exc:
                _rollback(con)
                if _mentions(exc, _DAMAGE_PHRASES + _DISK_FULL_PHRASES):
                    raise self.explain_error(exc, "migrate") from None
                raise StorageError(f"migration {version:03d}_{name} failed: {exc}") from None
        return newest

    # -- cycle -------------------------------------------------------------------------------

    def load_states(self, config: Config) -> dict[str, FeedState]:
        """State per configured feed (validators, polling): stored, updated by batches still
        pending.

        Never waits for the lock and never fails: a feed without a usable state is fetched
        whole, and due now. When another process holds the database, the read copy (written
        after the last stored cycle) stands in for it, so a feed told to wait (Retry-After)
        or retired is not asked because an analyst holds the file. A state whose address is
        not the feed's configured address now is dropped, so a moved feed is never asked
        "changed since?" with another address's validators.
        """
        states: dict[str, FeedState] = {}
        sources = [self.path]
        if self.read_copy:
            sources.append(self.read_copy_path)
        for source in sources:
            try:
                states = self._stored_states(source)
                break
            except (StorageError, duckdb.Error):
                continue  # locked or damaged: the write step says which
        states.update(self.queue.feed_states())
        addresses = {feed.name: feed.public_url for feed in config.feeds}
        return {
            feed_id: state
            for feed_id, state in states.items()
            if feed_id in addresses and state.url == addresses[feed_id]
        }

    def _stored_states(self, path: Path) -> dict[str, FeedState]:
        if not path.exists():
            return {}
        with self.connect(read_only=True, wait=False, path=path) as con:
            ((has_feeds,),) = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'feeds'"
            ).fetchall()
            if not has_feeds:
                return {}
            try:
                rows = con.execute(self.sql["feed_states"]).fetchall()
            except duckdb.BinderException:  # before migration 009: no polling state yet
                rows = con.execute(self.sql["feed_states_before_009"]).fetchall()
        return {row[0]: FeedState(*row[1:]) for row in rows}

    def store_cycle(self, config: Config, batch: CycleBatch) -> CycleReport:
        """Store this cycle, and every cycle kept from earlier failed writes, oldest first.

        The batch is kept in the pending queue first; if the database cannot be written, a
        StorageError says why and the batch stays kept for the next cycle.
        """
        notes: list[str] = []
        journal: Path | None = None
        try:
            journal = self.queue.keep(batch)
        except StorageError as exc:  # queue full or folder unwritable: the database may work
            kept_error: StorageError | None = exc
        else:
            kept_error = None
        try:
            with self.connect() as con:
                self.migrate(con)
                con.execute("BEGIN TRANSACTION")
                try:
                    self._upsert_feeds(con, config)
                    stale_topics = self.record_rule_versions(con, config)
                    con.execute("COMMIT")
                except BaseException:
                    _rollback(con)
                    raise
                earlier_stored, new_ids = self._store_queue(con, batch, journal, notes)
                if journal is None:
                    new_ids = self._store_batch(con, batch)
                if self.read_copy:
                    con.execute("CHECKPOINT")  # the whole database in the file, for the copy
        except (duckdb.Error, StorageError, _RefusedBatch) as exc:
            error = self.explain_error(exc, "write")
            if journal is not None and journal.exists():
                self.queue.remember_feed_states(_feed_states(batch))
            elif kept_error is not None:
                error = type(error)(f"{error}; and this cycle could not be kept: {kept_error}")
            if notes:  # what was set aside on the way must not go unsaid
                error = type(error)(f"{error} (also: {'; '.join(notes)})")
            raise error from None
        if not self.queue.paths():
            self.queue.forget_feed_states()
        if self.read_copy:
            self.publish_read_copy(notes)
        return CycleReport(batch, frozenset(new_ids), earlier_stored, stale_topics, notes)

    def publish_read_copy(self, notes: list[str]) -> None:
        """Copy the database, closed and checkpointed, beside itself and swap it in whole.

        A reader that holds the old copy open keeps reading it (the swap replaces the name,
        not the file it has open) and sees the new one when it opens the file again. A copy
        that cannot be made (disk full) is a note; the cycle is stored all the same."""
        partial = self.read_copy_path.with_name(self.read_copy_path.name + ".partial")
        try:
            with open(self.path, "rb") as source, open(partial, "wb") as target:
                copy_whole_file(source, target)
                os.fsync(target.fileno())
            os.replace(partial, self.read_copy_path)
        except OSError as exc:
            with suppress(OSError):
                partial.unlink(missing_ok=True)
            notes.append(f"the read copy {self.read_copy_path.name} was not refreshed: {exc}")

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection to the file readers open (`reader_path`), or a clear error
        when no cycle has stored anything yet."""
        path = self.reader_path()
        if not path.exists():
            raise StorageError(f"no database at {path} yet: run `tensionwatch run` first")
        with self.connect(read_only=True, path=path) as con:
            yield con

    def reader_path(self) -> Path:
        """The file readers open: the read copy when there is one, else the database."""
        if self.read_copy and self.read_copy_path.exists():
            return self.read_copy_path
        return self.path

    def _store_queue(
        self,
        con: duckdb.DuckDBPyConnection,
        batch: CycleBatch,
        journal: Path | None,
        notes: list[str],
    ) -> tuple[int, set[str]]:
        """Store the kept batches one transaction each; returns (earlier stored, new ids)."""
        earlier_stored, new_ids = 0, set()
        for path in self.queue.paths():
            if path == journal:
                try:
                    new_ids = self._store_batch(con, batch)
                except _RefusedBatch as exc:
                    aside = self._set_aside(path, notes)
                    raise StorageError(
                        f"the database refused this cycle's stories ({exc}); they were set "
                        f"aside as {aside}"
                    ) from None
                self._remove(path, notes)
                continue
            try:
                self._store_batch(con, self.queue.load(path))
            except UnreadableBatchError as exc:
                aside = self._set_aside(path, notes)
                notes.append(f"a kept cycle could not be read and was set aside as {aside} ({exc})")
                continue
            except _RefusedBatch as exc:
                aside = self._set_aside(path, notes)
                notes.append(
                    f"a kept cycle was refused by the database, set aside as {aside} ({exc})"
                )
                continue
            self._remove(path, notes)
            earlier_stored += 1
        return earlier_stored, new_ids

    def _set_aside(self, path: Path, notes: list[str]) -> Path:
        try:
            return self.queue.set_aside(path)
        except OSError as exc:
            notes.append(f"{path} could not be moved aside ({exc}); it is tried again next cycle")
            return path

    def _remove(self, path: Path, notes: list[str]) -> None:
        """A stored batch leaves the queue; if it cannot, storing it again changes nothing."""
        try:
            self.queue.remove(path)
        except OSError as exc:
            notes.append(f"{path} is stored but could not be removed ({exc})")

    def _store_batch(self, con: duckdb.DuckDBPyConnection, batch: CycleBatch) -> set[str]:
        con.execute("BEGIN TRANSACTION")
        try:
            new_ids = self._write(con, batch)
            con.execute("COMMIT")
        except (duckdb.Error, UnicodeError, TypeError, ValueError) as exc:
            _rollback(con)
            if _is_about_the_file(exc):
                raise
            # DuckDB refused a value, or the driver could not bind one (a lone surrogate in a
            # batch file edited by hand, a mapping where text belongs): this batch, not the file.
            raise _RefusedBatch(
                f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            ) from None
        except BaseException:
            _rollback(con)
            raise
        return new_ids

    def _upsert_feeds(self, con: duckdb.DuckDBPyConnection, config: Config) -> None:
        feeds = config.feeds
        con.execute(
            self.sql["upsert_feeds"],
            {
                "feed_id": [f.name for f in feeds],
                "url": [f.public_url for f in feeds],
                "language": [f.language for f in feeds],
                "outlet": [f.outlet_name for f in feeds],
                "now": datetime.now(UTC),
            },
        )
        index = config.index
        settings = {
            "index_base_from": index.base_from and index.base_from.isoformat(),
            "index_base_until": index.base_until and index.base_until.isoformat(),
            "poor_coverage": str(index.poor_coverage),
        }
        con.execute(
            self.sql["upsert_settings"],
            {"key": list(settings), "value": list(settings.values())},
        )

    def _write(self, con: duckdb.DuckDBPyConnection, batch: CycleBatch) -> set[str]:
        """Insert one batch inside the open transaction; returns the ids of stories new to us.

        A batch whose run is already stored (a cycle killed between its COMMIT and removing
        its pending file) changes nothing: its feed states are not applied a second time.
        """
        stored = con.execute(self.sql["run_is_stored"], {"run_id": batch.run_id}).fetchall()
        if stored:
            return set()
        known = self._known_story_ids(con, [s.story_id for s in batch.stories])
        stories = [s for s in batch.stories if s.story_id not in known]
        new_ids = {s.story_id for s in stories}
        event_starts: set[datetime] = set()
        if stories:
            con.execute(
                self.sql["insert_stories"], bulk_columns(stories, extra={"run_id": batch.run_id})
            )
            if self.events.enabled:
                event_starts = self._group_events(con, stories)
        when = {s.story_id: s.event_at for s in stories}
        new_scores = [(sid, when[sid], sc) for sid, sc in batch.scores if sid in new_ids]
        keys = Counter((sid, sc.topic, sc.rules_version) for sid, _, sc in new_scores)
        if twice := [key for key, n in keys.items() if n > 1]:
            # Only a batch file edited by hand can say this; story_scores has no key to refuse it.
            raise _RefusedBatch(f"the batch scores story {twice[0][0]} for {twice[0][1]} twice")
        self.insert_scores(con, new_scores)
        carried: dict[str, list[str]] = {}
        for story in batch.stories:
            carried.setdefault(story.feed_id, []).append(story.story_id)
        con.execute(
            self.sql["remember_story_ids"],
            {"feed_id": list(carried), "story_ids": list(carried.values())},
        )
        new_per_feed = Counter(s.feed_id for s in stories)
        outcomes = batch.outcomes
        configured = set(self._feed_ids(con))
        if outcomes:
            columns = bulk_columns(outcomes, extra={"run_id": batch.run_id})
            columns["entries_new"] = [new_per_feed.get(o.feed_id, 0) for o in outcomes]
            con.execute(self.sql["insert_fetches"], {k: columns[k] for k in _FETCH_COLUMNS})
            # Feeds removed from config.yaml since a pending batch was made are left alone, and
            # so are feeds not asked this cycle: their state is as it was.
            kept = [o for o in outcomes if o.feed_id in configured and o.asked]
            con.execute(
                self.sql["update_feed_states"],
                {
                    "feed_id": [o.feed_id for o in kept],
                    "url": [o.url for o in kept],
                    "title": [o.title for o in kept],
                    "etag": [o.etag for o in kept],
                    "last_modified": [o.last_modified for o in kept],
                    "body_hash": [o.body_hash for o in kept],
                    "fetched_at": [o.started_at for o in kept],
                    "failed": [o.failed for o in kept],
                    "failures": [o.failures for o in kept],
                    "next_due_at": [o.next_due_at for o in kept],
                    "due_reason": [o.due_reason for o in kept],
                    "retired_at": [o.retired_at for o in kept],
                    "moved_to": [o.moved_to for o in kept],
                    "ttl_minutes": [o.ttl_minutes for o in kept],
                },
            )
        story_days = {_utc_day(s.event_at) for s in stories}
        rank_days = set(story_days)
        if event_starts:
            # A copy that joins an event changes the outlet count shown beside the event's
            # stories on every day since it began.
            latest = _utc_day(max(when.values()))
            for start in event_starts:
                rank_days |= _days(_utc_day(start), latest)
        self.refresh_trend_tables(
            con,
            story_days=story_days,
            fetch_days={_utc_day(o.started_at) for o in outcomes},
            rank_days=rank_days,
        )
        count = Counter(o.outcome for o in outcomes)
        con.execute(
            self.sql["insert_run"],
            {
                "run_id": batch.run_id,
                "started_at": batch.started_at,
                "finished_at": batch.finished_at,
                "stored_at": datetime.now(UTC),
                "feeds_total": len(outcomes),
                "feeds_ok": count[OK],
                "feeds_unchanged": count[NOT_MODIFIED] + count[UNCHANGED],
                "feeds_failed": count[FAILED],
                "feeds_not_due": count[NOT_DUE],
                "feeds_waiting": count[WAITING],
                "feeds_retired": count[RETIRED],
                "entries_seen": sum(o.entries_seen for o in outcomes),
                "stories_new": len(stories),
                "rules_versions": json.dumps(batch.rules_versions),
            },
        )
        return new_ids

    def _known_story_ids(self, con: duckdb.DuckDBPyConnection, ids: list[str]) -> set[str]:
        """Which of these story ids are stored: most are in a feed's last body, found in
        `feeds`; only the others are looked up in `stories`."""
        if not ids:
            return set()
        known = {
            row[0]
            for row in con.execute(self.sql["remembered_story_ids"], {"story_id": ids}).fetchall()
        }
        unknown = [i for i in ids if i not in known]
        if len(unknown) > POINT_LOOKUPS_UP_TO:  # a backlog: one pass over every id is cheaper
            rows = con.execute(self.sql["known_story_ids"], {"story_id": unknown}).fetchall()
            known.update(row[0] for row in rows)
            return known
        for start in range(0, len(unknown), 100):
            chunk = unknown[start : start + 100]
            lookups = " UNION ALL ".join([self.sql["story_id_stored"]] * len(chunk))
            known.update(row[0] for row in con.execute(lookups, chunk).fetchall())
        return known

    def _group_events(self, con: duckdb.DuckDBPyConnection, stories: list[Story]) -> set[datetime]:
        """Group the new stories into events with the stories of the window around them
        (never the whole history: every query reads only that window). Returns when each
        event a new story joined began."""
        window = timedelta(hours=self.events.window_hours)
        times = [s.event_at for s in stories]
        span = {"since": min(times) - window, "until": max(times) + window}
        new = [
            StoryRef(s.story_id, s.feed_id, s.title, s.event_at, words=title_words(s.title))
            for s in stories
        ]
        common = {
            row[0]
            for row in con.execute(
                self.sql["common_words_near"], {**span, "max_posting": MAX_POSTING}
            ).fetchall()
        }
        rows = con.execute(
            self.sql["stories_near"],
            {
                **span,
                "words": sorted({w for s in new for w in s.words or ()} - common),
                "story_id": [s.story_id for s in stories],
            },
        ).fetchall()
        started = {}
        recent = []
        for story_id, feed_id, title, event_at, event_id, event_started_at, words in rows:
            started[event_id] = event_started_at
            words = None if words is None else frozenset(words)
            recent.append(StoryRef(story_id, feed_id, title, event_at, event_id, words))
        groups = group_events(new, recent, window, self.events.threshold, common=common)
        by_id = {s.story_id: s for s in new}
        for g in groups:  # in time order: an event begun in this batch starts at its first story
            started.setdefault(g.event_id, by_id[g.story_id].event_at)
        con.execute(
            self.sql["insert_story_events"],
            {
                "story_id": [g.story_id for g in groups],
                "event_id": [g.event_id for g in groups],
                "similarity": [g.similarity for g in groups],
                "event_at": [by_id[g.story_id].event_at for g in groups],
                "event_started_at": [started[g.event_id] for g in groups],
                "title_words": [sorted(by_id[g.story_id].words or ()) for g in groups],
                "now": datetime.now(UTC),
            },
        )
        return {started[g.event_id] for g in groups if g.similarity is not None}

    def refresh_trend_tables(
        self,
        con: duckdb.DuckDBPyConnection,
        story_days: set[date],
        fetch_days: set[date],
        rank_days: set[date],
    ) -> None:
        """Recompute the trend tables (migration 006) for these UTC days: the topic buckets of
        the days whose stories changed, the polling buckets of the days with new fetches, and
        the top stories of `rank_days`. A cycle with nothing new refreshes only its polling.
        Days whose fetch logs a prune removed keep their polling buckets as they were."""
        kept_from = self._fetch_logs_kept_from(con)
        if kept_from is not None:
            fetch_days = {day for day in fetch_days if day >= kept_from}
        for table, days in (("topic_buckets", story_days), ("polling_buckets", fetch_days)):
            for since, until in _day_runs(days):
                span = {"since": since, "until": until}
                con.execute(self.sql[f"delete_{table}"], span)
                con.execute(self.sql[f"insert_{table}"], span)
        for since, until in _day_runs(rank_days):
            span = {"since": since, "until": until}
            ((events_since,),) = con.execute(self.sql["events_started_since"], span).fetchall()
            con.execute(self.sql["delete_top_story_ranks"], span)
            con.execute(self.sql["insert_top_story_ranks"], {**span, "events_since": events_since})

    def _fetch_logs_kept_from(self, con: duckdb.DuckDBPyConnection) -> date | None:
        """The first UTC day whose fetch logs are all stored, when a prune removed earlier ones
        (retention.py): a pruned day's coverage must not be recomputed from nothing."""
        ((has_prunes,),) = con.execute(self.sql["has_prunes"]).fetchall()
        if not has_prunes:
            return None
        ((before,),) = con.execute(self.sql["fetch_logs_kept_from"]).fetchall()
        return None if before is None else _utc_day(before)

    def rebuild_trend_tables(
        self, con: duckdb.DuckDBPyConnection, since: datetime | None = None
    ) -> None:
        """Recompute the trend tables from `since` (default: all history) to the end."""
        ((first, last),) = con.execute(self.sql["history_span"]).fetchall()
        if first is None:
            return
        days = _days(_utc_day(max(first, since) if since else first), _utc_day(last))
        self.refresh_trend_tables(con, days, days, days)

    def insert_scores(
        self,
        con: duckdb.DuckDBPyConnection,
        scores: list[tuple[str, datetime, TopicScore]],
        rescoring: bool = False,
    ) -> None:
        """Bulk-insert (story_id, the story's event_at, score). A cycle inserts the scores of
        its new stories only; a rescore leaves a score already stored as it is."""
        if not scores:
            return
        now = datetime.now(UTC)
        times = [at for _, at, _ in scores]
        span = {"since": min(times), "until": max(times)} if rescoring else {}
        con.execute(
            self.sql["insert_rescored" if rescoring else "insert_scores"],
            {
                **span,
                "story_id": [sid for sid, _, _ in scores],
                "topic": [sc.topic for _, _, sc in scores],
                "rules_version": [sc.rules_version for _, _, sc in scores],
                "score": [sc.score for _, _, sc in scores],
                "relevant": [sc.relevant for _, _, sc in scores],
                "matches": [json.dumps(sc.matches, ensure_ascii=False) for _, _, sc in scores],
                "scored_at": [now] * len(scores),
                "scored": [sc.scored for _, _, sc in scores],
                "threat_points": [_class_points(sc, "threat") for _, _, sc in scores],
                "act_points": [_class_points(sc, "act") for _, _, sc in scores],
                "event_at": [at for _, at, _ in scores],
            },
        )

    def record_rule_versions(self, con: duckdb.DuckDBPyConnection, config: Config) -> list[str]:
        """Make config.yaml's rule versions the current ones (the trend views follow them).

        Returns the topics whose rules changed while stories scored under older rules exist:
        their history shows in the trend views only after `tensionwatch rescore`.
        """
        topics = list(config.topics)
        versions = [config.topics[t].rules_version() for t in topics]
        params = {"topic": topics, "rules_version": versions}
        changing = [
            row[0] for row in con.execute(self.sql["versions_becoming_current"], params).fetchall()
        ]
        if changing:
            # Only the versions becoming current are written, with their rules (a dump of
            # six languages' rules is ~1 MB: not something every cycle should build).
            new = {
                "topic": changing,
                "rules_version": [versions[topics.index(t)] for t in changing],
            }
            rules = [
                json.dumps(
                    config.topics[t].model_dump(mode="json", by_alias=True), ensure_ascii=False
                )
                for t in changing
            ]
            con.execute(
                self.sql["upsert_rule_versions"], {**new, "rules": rules, "now": datetime.now(UTC)}
            )
        # Versions no longer in config.yaml (changed rules, a topic taken out) stop being current.
        con.execute(self.sql["retire_rule_versions"], params)
        if changing:
            # Only when a version becomes current does the history need checking: afterwards
            # cycles score under it, and rescore checks again (the anti-join reads every score).
            self.check_history(con, config, changing)
        return [row[0] for row in con.execute(self.sql["stale_current_versions"]).fetchall()]

    def check_history(
        self, con: duckdb.DuckDBPyConnection, config: Config, topics: list[str]
    ) -> None:
        """Record whether these topics have stories not scored under their current rules."""
        params = {
            "topic": topics,
            "rules_version": [config.topics[t].rules_version() for t in topics],
        }
        stale = [
            row[0] for row in con.execute(self.sql["topics_with_older_scores"], params).fetchall()
        ]
        con.execute(self.sql["set_history_stale"], {"topic": topics, "stale": stale})

    def _feed_ids(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        return [row[0] for row in con.execute("SELECT feed_id FROM feeds").fetchall()]

    def find_story(self, story_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A stored story (by id or unique id prefix) and its stored scores."""
        with self.reading() as con:
            rows = rows_as_dicts(con.execute(self.sql["story_by_id"], {"story_id": story_id}))
            if not rows:
                raise StorageError(f"no story with id {story_id!r} in {self.path}")
            if len(rows) > 1 and rows[0]["story_id"] != story_id:
                raise StorageError(
                    f"{story_id!r} is the start of several story ids; give more of it"
                )
            story = rows[0]
            scores = rows_as_dicts(
                con.execute(self.sql["scores_of_story"], {"story_id": story["story_id"]})
            )
        return story, scores

    def pending_count(self) -> int:
        return self.queue.count()


# Linux's FICLONE ioctl: the copy shares the source's blocks until either is written.
_FICLONE = 0x40049409


def copy_whole_file(source: BinaryIO, target: BinaryIO) -> str:
    """Copy an open file into an empty one, the cheapest way the filesystem allows; returns
    which was used. A clone (btrfs, XFS, bcachefs; APFS has its own call, not used here) costs
    the same at any size: the read copy then no longer grows a cycle's time with history. Else
    the kernel copies (copy_file_range, no trip through Python), else Python does."""
    size = os.fstat(source.fileno()).st_size
    if sys.platform.startswith("linux"):
        try:
            fcntl.ioctl(target.fileno(), _FICLONE, source.fileno())
            return "clone"
        except OSError:
            pass  # not this filesystem: copy
    if hasattr(os, "copy_file_range"):
        try:
            copied = 0
            while copied < size:
                step = os.copy_file_range(source.fileno(), target.fileno(), size - copied)
                if step == 0:
                    break  # the file shrank under us: what is there is copied
                copied += step
            return "kernel"
        except OSError:
            source.seek(0)
            target.seek(0)
            target.truncate()
    shutil.copyfileobj(source, target, 16 * 1024 * 1024)
    target.flush()
    return "python"


_FETCH_COLUMNS = (
    "fetch_id",
    "run_id",
    "feed_id",
    "url",
    "final_url",
    "started_at",
    "duration_ms",
    "attempts",
    "outcome",
    "status_code",
    "bytes",
    "entries_seen",
    "entries_new",
    "error",
    "warning",
    "next_due_at",
    "due_reason",
)


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _days(first: date, last: date) -> set[date]:
    """Every day from first to last, both included (none when last is before first)."""
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _day_runs(days: set[date]) -> list[tuple[datetime, datetime]]:
    """Consecutive days as [since, until) UTC ranges: one refresh per run, so a backlog spread
    over months reads its own days, not everything between them."""
    runs: list[tuple[datetime, datetime]] = []
    for day in sorted(days):
        since, until = _midnight(day), _midnight(day) + timedelta(days=1)
        if runs and runs[-1][1] == since:
            runs[-1] = (runs[-1][0], until)
        else:
            runs.append((since, until))
    return runs


def rows_as_dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """A query's rows as {column: value} dicts."""
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _class_points(score: TopicScore, kind: str) -> float:
    """Points of a relevant story's signals of one class (threat / act), as the GPR split."""
    if not score.relevant:
        return 0.0
    return sum(
        s["points"]
        for s in score.matches.get("signals", ())
        if s.get("role") == "signal" and s.get("class") == kind
    )


def _feed_states(batch: CycleBatch) -> list[tuple[str, FeedState]]:
    """Each asked feed's state after this batch (a failed fetch keeps the validators it was
    asked with, and counts for polling; a feed not asked keeps its state as it was)."""
    return [(o.feed_id, o.state()) for o in batch.outcomes if o.asked]


def bulk_columns(rows: list[Any], extra: dict[str, Any]) -> dict[str, list[Any]]:
    """Rows of dataclasses → {column: [values]} for the unnest()-based bulk inserts."""
    names = [n for n in rows[0].__slots__ if not n.startswith("_")]
    columns: dict[str, list[Any]] = {n: [getattr(r, n) for r in rows] for n in names}
    for name, value in extra.items():
        columns[name] = [value] * len(rows)
    return columns
