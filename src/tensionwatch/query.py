"""Read-only SQL for analysts: `tensionwatch sql`.

The database is opened read-only, and before the analyst's SQL runs DuckDB's own guards are
set and locked (`enable_external_access = false`, `lock_configuration = true`): a statement that
would write (INSERT, CREATE, COPY … TO), reach a file or the network (ATTACH, read_csv, glob,
INSTALL, LOAD) or lift those settings is refused by DuckDB itself. The only file that may be
written is the Parquet output the analyst asked for (`allowed_paths`). The connection is closed
when the command ends, so the schedule's next cycle never waits for it for longer than the query.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import duckdb

from tensionwatch.errors import TensionwatchError
from tensionwatch.store import Store

FORMATS = ("table", "csv", "json", "parquet")


class QueryError(TensionwatchError):
    """The analyst's SQL failed or was refused: DuckDB's message, no traceback."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]


@contextmanager
def reading(store: Store, allowed_paths: list[str] | None = None) -> Iterator[Any]:
    """A read-only connection with external access off and the configuration locked."""
    with store.reading() as con:  # the read copy when cycles publish one
        if allowed_paths:
            con.execute("SET allowed_paths = $paths", {"paths": allowed_paths})
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        yield con


def run_query(store: Store, sql: str) -> QueryResult:
    with reading(store) as con:
        try:
            cursor = con.execute(sql)
        except duckdb.Error as exc:
            raise QueryError(_message(exc)) from None
        if cursor.description is None:  # a statement with no result (SET, a temporary table)
            return QueryResult([], [], [])
        columns = [d[0] for d in cursor.description]
        types = [str(d[1]) for d in cursor.description]
        return QueryResult(columns, types, cursor.fetchall())


def write_parquet(store: Store, sql: str, output: Path) -> int:
    """COPY the query's result to a Parquet file: the one file the query may write."""
    target = str(output.resolve())
    select = sql.strip().rstrip(";").strip()
    with reading(store, allowed_paths=[target]) as con:
        try:
            count = con.execute(
                f"COPY ({select}) TO '{_quote(target)}' (FORMAT parquet)"
            ).fetchall()
        except duckdb.Error as exc:
            raise QueryError(_message(exc)) from None
    return int(count[0][0]) if count else 0


def write_csv(result: QueryResult, out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(["" if v is None else _plain(v) for v in row])


def write_json(result: QueryResult, out: IO[str]) -> None:
    """One JSON object per row (JSON Lines): streams, and every tool reads it."""
    for row in result.rows:
        out.write(
            json.dumps(
                dict(zip(result.columns, row, strict=True)), default=_plain, ensure_ascii=False
            )
            + "\n"
        )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=_plain, ensure_ascii=False)
    return value


def _quote(path: str) -> str:
    return path.replace("'", "''")


def _message(exc: duckdb.Error) -> str:
    text = str(exc).strip()
    if isinstance(exc, duckdb.PermissionException) or "configuration has been locked" in text:
        return f"refused: it would reach outside the database ({text.splitlines()[0]})"
    if "read-only mode" in text:
        return f"refused: the database is read here, never written ({text.splitlines()[0]})"
    return text
