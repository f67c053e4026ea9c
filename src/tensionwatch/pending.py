"""The pending queue: cycles kept on disk until the database has stored them.

Every cycle's batch is written here *before* the database is touched, and removed once its
transaction has committed. So a cycle killed at any point, a database locked for a day or a
disk that filled up loses nothing that was fetched: the next cycle that can write stores each
kept batch in its own transaction, oldest first (stable keys and `ON CONFLICT DO NOTHING` make
a batch stored twice harmless). Files are plain JSON, one per cycle, written atomically and
readable only by their owner (they hold what feeds said, and feed addresses).

The queue is bounded: it holds at most `storage.max_pending_mb`; past that a new batch is not
kept and the user is told. While batches wait, the newest state of each feed is kept beside
them (`feed_states.json`), so cycles that cannot write still ask feeds "has anything
changed?" instead of downloading and keeping every feed whole again, and still ask each feed
only when it is due (a feed told to wait by Retry-After, or retired, is not asked). A batch file
that cannot be read is moved to `unreadable/` with a warning, never retried, never fatal.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import asdict, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from tensionwatch.cycle import CycleBatch
from tensionwatch.errors import StorageError
from tensionwatch.fetch import FeedState

STATES_FILE = "feed_states.json"
PARTIAL = ".partial"  # a file being written; one left by a killed cycle is removed
UNREADABLE_DIR = "unreadable"
# Batch files are named after the cycle's start in UTC, so their names sort oldest first.
_NAMED_BY_TIME = re.compile(r"^\d{8}T\d{12}Z-")


class PendingFullError(StorageError):
    """The pending queue is at its size limit; the batch was not kept."""


class UnreadableBatchError(StorageError):
    """A kept batch file cannot be read back (truncated, edited, from another program)."""


def _write_atomically(target: Path, text: str) -> None:
    """Write a whole file or nothing: a crash leaves the old file or the new one, never half."""
    partial = target.with_name(target.name + PARTIAL)
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
    except BaseException:
        # A full disk leaves a file as big as the space that was left: never keep it.
        with suppress(OSError):
            partial.unlink()
        raise


class PendingQueue:
    def __init__(self, folder: Path, max_bytes: int):
        self.folder = Path(folder)
        self.max_bytes = max_bytes

    def _ensure_folder(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with suppress(OSError):
            self.folder.chmod(0o700)

    # -- batches ------------------------------------------------------------------------------

    def paths(self) -> list[Path]:
        """Kept batch files, oldest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.glob("*.json"):
            if path.name == STATES_FILE:
                continue
            if _NAMED_BY_TIME.match(path.name):  # the cycle's own start time, in UTC
                found.append((1, path.name, path))
            else:  # kept by an older tensionwatch: {run_id}.json, older than the rest
                with suppress(OSError):
                    found.append((0, f"{path.stat().st_mtime_ns:020d}", path))
        return [path for _, _, path in sorted(found)]

    def size_bytes(self) -> int:
        total = 0
        for path in self.paths():
            with suppress(OSError):
                total += path.stat().st_size
        return total

    def count(self) -> int:
        return len(self.paths())

    def keep(self, batch: CycleBatch) -> Path:
        """Write the batch to the queue; PendingFullError if that would pass the size limit."""
        self._remove_partial_files()
        text = json.dumps(batch.to_json(), ensure_ascii=False)
        size = len(text.encode("utf-8"))
        held = self.size_bytes()
        if held and held + size > self.max_bytes:
            raise PendingFullError(
                f"the pending queue {self.folder} holds {_megabytes(held)} in {self.count()} "
                f"cycle(s); this one needs {_megabytes(size)} more and the limit is "
                f"{_megabytes(self.max_bytes)} (storage.max_pending_mb)"
            )
        self._ensure_folder()
        target = self.folder / f"{batch.started_at:%Y%m%dT%H%M%S%fZ}-{batch.run_id}.json"
        try:
            _write_atomically(target, text)
        except OSError as exc:
            raise StorageError(f"cannot keep the cycle in {self.folder}: {exc}") from None
        return target

    def _remove_partial_files(self) -> None:
        """Files a killed cycle was writing: never whole, never read. (Cycles never overlap.)"""
        if self.folder.is_dir():
            for partial in self.folder.glob("*" + PARTIAL):
                with suppress(OSError):
                    partial.unlink()

    def load(self, path: Path) -> CycleBatch:
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
            return CycleBatch.from_json(data)
        except Exception as exc:  # whatever is in the file: deep nesting, wrong shapes, bytes
            raise UnreadableBatchError(
                f"{path.name}: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None

    def remove(self, path: Path) -> None:
        with suppress(FileNotFoundError):
            path.unlink()

    def set_aside(self, path: Path) -> Path:
        """Move a batch that cannot be stored out of the queue, for a person to look at."""
        aside = self.folder / UNREADABLE_DIR
        aside.mkdir(mode=0o700, exist_ok=True)
        target = aside / path.name
        os.replace(path, target)
        return target

    # -- feed state while batches wait ---------------------------------------------------------

    def feed_states(self) -> dict[str, FeedState]:
        """The newest state of each feed in kept batches (empty if none)."""
        if not self.paths():
            return {}
        try:
            data = json.loads((self.folder / STATES_FILE).read_text(encoding="utf-8"))
            return {str(feed_id): _state(state) for feed_id, state in data.items()}
        except Exception:  # missing or damaged, whatever is in it: feeds are fetched whole again
            return {}

    def remember_feed_states(self, states: Iterable[tuple[str, FeedState]]) -> None:
        merged = self.feed_states()
        merged.update(states)
        with suppress(OSError):  # an optimisation: losing it costs one full fetch per feed
            self._ensure_folder()
            text = json.dumps(
                {k: asdict(v) for k, v in merged.items()}, ensure_ascii=False, default=_iso
            )
            _write_atomically(self.folder / STATES_FILE, text)

    def forget_feed_states(self) -> None:
        with suppress(OSError):
            (self.folder / STATES_FILE).unlink()


_STATE_TIMES = frozenset(f.name for f in fields(FeedState) if f.name.endswith("_at"))


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _state(data: dict[str, Any]) -> FeedState:
    """A FeedState from feed_states.json (one written before polling lacks its fields)."""
    return FeedState(
        **{k: datetime.fromisoformat(v) if k in _STATE_TIMES and v else v for k, v in data.items()}
    )


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size < 10e6 else f"{size / 1e6:.0f} MB"
