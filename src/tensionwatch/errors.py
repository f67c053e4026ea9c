"""Errors tensionwatch raises on purpose. Everything else is a bug.

    TensionwatchError
    ├── ConfigError      config.yaml cannot be read or is invalid (one message per problem)
    └── StorageError     the DuckDB file cannot be opened, migrated or written
        ├── DatabaseLockedError   another process held the lock past the configured wait
        └── DatabaseDamagedError  the file is damaged or not a tensionwatch database

Per-feed problems (DNS, timeouts, HTTP errors, unparseable bodies) are not raised: they are
returned as values in each feed's outcome, so one bad feed never fails a cycle.
"""

from __future__ import annotations

from pathlib import Path


class TensionwatchError(Exception):
    """Base of every error tensionwatch raises on purpose."""


class ConfigError(TensionwatchError):
    def __init__(self, problems: list[str], path: Path | None = None):
        self.problems = problems
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(problems))


class StorageError(TensionwatchError):
    """The database could not be used; the message says why and what to do."""


class DatabaseLockedError(StorageError):
    """Another process holds the DuckDB file lock (its message names the holder)."""


class DatabaseDamagedError(StorageError):
    """The DuckDB file is damaged or is not a database at all (its message says what to do)."""
