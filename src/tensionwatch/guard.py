"""One cycle at a time per database: an advisory lock on a file beside it.

Two cycles at once would both fetch every feed and then fight over DuckDB's write lock; a
watchdog run beside a cycle has nothing to watch. Prefect keeps one run of a deployment at a
time (`concurrency_limit: 1`, CANCEL_NEW), but a `tensionwatch run` typed while the schedule
runs, a second `serve`, or a worker on another queue are not Prefect's to stop. So the cycle
itself takes `<database>.cycle.lock` with flock(2), without waiting: whoever holds it, this
one does nothing and says who does.

The kernel drops the lock when its process ends, however it ends (SIGKILL, a reboot), so a
crashed cycle never leaves a stale lock behind and nothing needs cleaning up after a restart.
The file's text (pid, what, since when) is only for the message.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from tensionwatch.errors import TensionwatchError


class CycleRunningError(TensionwatchError):
    """Another process holds the cycle lock of this database (the message says who)."""


def guard_path(database: Path) -> Path:
    return database.with_name(database.name + ".cycle.lock")


def _try_lock(fd: int) -> bool:
    """Take the lock without waiting; one more try a moment later, because `held_by` holds
    a shared lock for a moment while it looks."""
    for attempt in range(2):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt == 0:
                time.sleep(0.2)
    return False


def held_by(database: Path) -> str | None:
    """Who holds the cycle lock of `database` now (a quick look, before starting anything);
    None when nobody does. The cycle itself still takes the lock: this only spares a user
    the wait for Prefect to start when the answer is already known."""
    path = guard_path(database)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # never taken, or unreadable: the cycle will find out
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 300, 0).decode("utf-8", "replace").strip() or "another process"
    finally:
        os.close(fd)  # closing drops the shared lock, if it was taken
    return None


@contextmanager
def cycle_lock(database: Path, what: str = "a cycle") -> Iterator[None]:
    """Hold the cycle lock of `database` for the block, or raise CycleRunningError at once."""
    path = guard_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not _try_lock(fd):
            holder = os.pread(fd, 300, 0).decode("utf-8", "replace").strip() or "another process"
            raise CycleRunningError(
                f"another cycle is running on {database} ({holder}); this one did nothing"
            ) from None
        since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what}, pid {os.getpid()}, since {since}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
