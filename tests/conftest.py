from __future__ import annotations

import os
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.feedserver import FeedServer

ROOT = Path(__file__).resolve().parents[1]

# No test may reach beyond 127.0.0.1, and Prefect must not phone home from CI.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The suite runs in a zone that is not UTC (UTC+3, no daylight saving), as an analyst in
# Istanbul would: a test or a query that only works in UTC fails here, not in their hands.
os.environ["TZ"] = "Europe/Istanbul"
time.tzset()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


def default_topics() -> dict:
    """The topics of the shipped config.yaml: tests check the rules analysts really get."""
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["topics"]


def write_config(tmp_path: Path, feeds: list[dict], **overrides: dict) -> Path:
    """A config.yaml in tmp_path: the default topics, the given feeds, fast test settings."""
    config = {
        "storage": {
            "path": str(tmp_path / "tw.duckdb"),
            "lock_timeout_seconds": 2,
            "lock_retry_seconds": 0.2,
        },
        "fetch": {
            "timeout_seconds": 1,
            "deadline_seconds": 3,
            "retries": 1,
            "retry_backoff_seconds": 0.05,
            "per_host_concurrency": 8,
        },
        "feeds": feeds,
        "topics": default_topics(),
    }
    for key, value in overrides.items():
        config[key] = {**config.get(key, {}), **value}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def turkish_upper(text: str) -> str:
    """Upper case the Turkish way: i → İ, ı → I."""
    return text.replace("i", "İ").replace("ı", "I").upper()


def turkish_lower(text: str) -> str:
    """Lower case the Turkish way: I → ı, İ → i."""
    return text.replace("I", "ı").replace("İ", "i").lower()


def without_accents(text: str) -> str:
    """What an accent-less keyboard types: NFD without combining marks, ı → i, İ → I."""
    text = text.replace("ı", "i").replace("İ", "I")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def old_database(path: Path, migrations_applied: int):
    """A DuckDB file with the schema of an earlier release: its first migrations, recorded.
    Returns the open connection (close it, or use it in `with`)."""
    import duckdb

    from tensionwatch.store import migrations

    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL)"
    )
    for version, name, sql in migrations()[:migrations_applied]:
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
    return con


@pytest.fixture(scope="module")
def stored_history(tmp_path_factory):
    """Five weeks of quiet six-hour windows up to two days ago (tests/alert_history.py),
    built once per test module; tests take a copy of it (`history`, alert_history.copy_of)."""
    from tests.alert_history import START, History

    h = History(tmp_path_factory.mktemp("history"))
    h.keep(h.quiet(START, 35 * 4 - 8))
    return h


@pytest.fixture
def history(stored_history, tmp_path):
    from tests.alert_history import copy_of

    return copy_of(stored_history, tmp_path)
