"""Storage under faults: what a user finds after a crash, a full disk, a damaged file, a lock.

Real DuckDB files and the real feed server on 127.0.0.1. Cycles that must die or run under a
resource limit run in a child process (tests/storage_child.py: the core cycle, no Prefect);
the others run in this process exactly as the flow's tasks call them. Feeds serve generated
items whose guids name the round that served them, so a test knows which stories only one
cycle ever saw: those can reach the database only through what that cycle kept.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections import Counter
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import duckdb
import pytest

from tensionwatch.cli import main
from tensionwatch.config import Config, load_config
from tensionwatch.cycle import CycleBatch, CycleReport, new_batch, parse_and_score
from tensionwatch.errors import DatabaseDamagedError, DatabaseLockedError, StorageError
from tensionwatch.fetch import fetch_feeds
from tensionwatch.pending import PendingQueue
from tensionwatch.store import Store
from tensionwatch.workers import FeedWorkers, feed_workers
from tests.conftest import default_topics, write_config
from tests.feedserver import FeedServer, Route

CHILD = Path(__file__).with_name("storage_child.py")
WORDS = [
    "Iran",
    "Israel",
    "missile",
    "strike",
    "drone",
    "Tehran",
    "Jerusalem",
    "sanctions",
    "Russia",
    "Türkiye",
    "export",
    "dual",
    "use",
    "components",
    "ceasefire",
    "talks",
    "envoy",
    "border",
    "shipment",
    "customs",
    "ministry",
]


# --- feeds, configs, cycles --------------------------------------------------------------------


def rss(tag: str, feed: int, items: int, words: int = 2) -> bytes:
    """An RSS feed of `items` entries with guids `{tag}-f{feed}-{k}`."""
    entries = []
    for k in range(items):
        summary = " ".join(WORDS[(k * 7 + j * 3 + feed) % len(WORDS)] for j in range(words))
        entries.append(
            f"<item><title>{tag} {feed}-{k}: {WORDS[k % len(WORDS)]} "
            f"{WORDS[(k + 5) % len(WORDS)]}</title>"
            f'<guid isPermaLink="false">{tag}-f{feed}-{k}</guid>'
            f"<link>https://news.example/{tag}/{feed}/{k}</link>"
            f"<description>{escape(summary)}</description>"
            f"<pubDate>Wed, 21 Aug 2024 10:{k % 60:02d}:00 GMT</pubDate></item>"
        )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Feed</title>"
        "<link>https://news.example/</link><description>generated</description>"
        + "".join(entries)
        + "</channel></rss>"
    ).encode()


def serve(server: FeedServer, tag: str, feeds: int, items: int, words: int = 2) -> None:
    for j in range(feeds):
        server.routes[f"/f{j}.xml"] = Route(body=rss(tag, j, items, words))


def setup(tmp_path: Path, server: FeedServer, feeds: int, **overrides: dict) -> tuple[Path, Config]:
    # Four connections per host: the test server's listen backlog is five.
    overrides["fetch"] = {"per_host_concurrency": 4, **overrides.get("fetch", {})}
    # These faults are the database's own; the read copy's are tested apart (test_readers).
    overrides["storage"] = {"read_copy": False, **overrides.get("storage", {})}
    feed_list = [
        {"name": f"f{j}", "url": server.url(f"/f{j}.xml"), "language": "en"} for j in range(feeds)
    ]
    path = write_config(tmp_path, feed_list, **overrides)
    return path, load_config(path)


def fetch_and_parse(
    config: Config, store: Store | None = None, workers: FeedWorkers | None = None
) -> CycleBatch:
    store = store or Store.from_config(config)
    results = fetch_feeds(config.feeds, store.load_states(config), config.fetch)
    return parse_and_score(config, new_batch(config), results, workers)


def run_cycle(config: Config, workers: FeedWorkers | None = None) -> CycleReport:
    store = Store.from_config(config)
    return store.store_cycle(config, fetch_and_parse(config, store, workers))


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def stored(db: Path, tag: str) -> int:
    """Stories stored from the items a feed served under `tag`."""
    return query(db, "SELECT count(*) FROM stories WHERE guid LIKE ?", [f"{tag}-%"])[0][0]


def assert_no_duplicates(db: Path) -> None:
    ((total, ids, guids),) = query(
        db, "SELECT count(*), count(DISTINCT story_id), count(DISTINCT guid) FROM stories"
    )
    assert total == ids == guids, f"{total} stories, {ids} ids, {guids} guids"


def assert_whole_cycles(db: Path, topics: int) -> None:
    """Every stored cycle is whole: all its fetches, its stories each scored for every topic."""
    checks = {
        "runs without all their fetches": "SELECT count(*) FROM runs AS r WHERE feeds_total <> "
        "(SELECT count(*) FROM fetches AS f WHERE f.run_id = r.run_id)",
        "fetches without a run": "SELECT count(*) FROM fetches "
        "WHERE run_id NOT IN (SELECT run_id FROM runs)",
        "stories without a run": "SELECT count(*) FROM stories "
        "WHERE run_id NOT IN (SELECT run_id FROM runs)",
        "stories not scored for every topic": "SELECT count(*) FROM stories LEFT JOIN "
        "(SELECT story_id, count(DISTINCT topic) AS n FROM story_scores GROUP BY story_id) "
        f"USING (story_id) WHERE coalesce(n, 0) <> {topics}",
        "scores of stories not stored": "SELECT count(*) FROM story_scores "
        "WHERE story_id NOT IN (SELECT story_id FROM stories)",
    }
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute("PRAGMA database_size").fetchall()
        found = {what: con.execute(sql).fetchall()[0][0] for what, sql in checks.items()}
    assert found == dict.fromkeys(checks, 0)


def child_command(*args: str) -> list[str]:
    return [sys.executable, str(CHILD), *args]


def kept_run_ids(store: Store) -> list[str]:
    # Kept files are named <started_at>-<run_id>.json.
    return [path.stem.split("-", 1)[1] for path in store.queue.paths()]


# --- 1. SIGKILL at random points of a cycle ------------------------------------------------------

KILL_ROUNDS = int(os.environ.get("TW_KILL_ROUNDS") or 20)
KILL_FEEDS, KILL_ITEMS = 10, 300
BEFORE, KEPT, COMMITTED = "killed before its batch was kept", "kept, not committed", "committed"


def test_sigkill_at_random_points_loses_and_duplicates_nothing(feed_server, tmp_path, capsys):
    # Copies of the two shipped topics: more score rows make the database write a larger part
    # of the cycle, so more kills land while the batch waits in the queue.
    topics = {
        f"{name}_copy{c}": rules for c in range(4) for name, rules in default_topics().items()
    }
    path, config = setup(tmp_path, feed_server, KILL_FEEDS, topics=topics)
    db, store = config.database_path, Store.from_config(config)
    per_round = KILL_FEEDS * KILL_ITEMS
    seed = int(os.environ.get("TW_KILL_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)

    # Un-killed cycles first: the shorter one's length sets the range of kill times.
    durations = []
    for warm in ("warm0", "warm1"):
        serve(feed_server, warm, KILL_FEEDS, KILL_ITEMS)
        started = time.monotonic()
        done = subprocess.run(
            child_command("cycle", str(path)),
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TW_CHILD_MARKS": "1"},
        )
        durations.append(time.monotonic() - started)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"stored {per_round}" in done.stdout
    duration = min(durations)
    marks = dict(line.split() for line in done.stdout.splitlines() if line[0].islower())
    print(f"seed {seed}; un-killed cycle {duration:.2f} s, marks {marks}")

    phases: Counter[str] = Counter()
    exited = lost = 0
    for i in range(KILL_ROUNDS):
        tag = f"r{i}"
        serve(feed_server, tag, KILL_FEEDS, KILL_ITEMS)
        delay = rng.uniform(0, 1.3 * duration)
        out, err = tmp_path / f"round{i}.out", tmp_path / f"round{i}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            child = subprocess.Popen(
                child_command("cycle", str(path)),
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # its parse workers die with it
            )
        try:
            child.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        else:
            exited += 1
            assert child.returncode == 0, out.read_text() + err.read_text()
            with suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # a parse worker still on its way out

        found = re.search(r"^run_id (\S+)$", out.read_text(), re.MULTILINE)
        run_id = found.group(1) if found else None
        kept = kept_run_ids(store)
        assert set(kept) <= {run_id}, f"round {i}: kept {kept}, the killed cycle was {run_id}"
        committed = bool(
            run_id and query(db, "SELECT count(*) FROM runs WHERE run_id = ?", [run_id])[0][0]
        )
        phase = COMMITTED if committed else KEPT if kept else BEFORE
        phases[phase] += 1

        # The killed cycle left a database that opens and holds only whole cycles.
        assert_whole_cycles(db, len(config.topics))
        assert stored(db, tag) == (per_round if committed else 0), f"round {i} ({phase})"

        # A normal cycle after the crash (round i's items are gone from the feeds) succeeds and
        # stores whatever the killed one kept.
        serve(feed_server, f"n{i}", KILL_FEEDS, 2)
        report = run_cycle(config)
        assert report.pending_stored == len(kept) and store.pending_count() == 0
        assert stored(db, f"n{i}") == KILL_FEEDS * 2
        round_stored = stored(db, tag)
        if phase == BEFORE:
            assert round_stored == 0  # only a kept batch could bring them: nothing half-stored
        else:
            lost += per_round - round_stored

    assert_whole_cycles(db, len(config.topics))
    ((total, distinct),) = query(db, "SELECT count(*), count(DISTINCT story_id) FROM stories")
    partial = len(list(store.pending_dir.glob("*.partial")))
    summary = (
        f"SIGKILL x{KILL_ROUNDS} (seed {seed}, kill time uniform in 0..{1.3 * duration:.2f} s): "
        f"{phases[BEFORE]} {BEFORE}, {phases[KEPT]} {KEPT}, {phases[COMMITTED]} {COMMITTED} "
        f"({exited} of them had exited before the kill); {lost} stories lost, {total - distinct} duplicated; "
        f"{partial} half-written .partial file(s) left in the queue folder"
    )
    with capsys.disabled():
        print("\n" + summary)
    assert_no_duplicates(db)
    assert lost == 0, summary
    killed_durable = phases[KEPT] + phases[COMMITTED] - exited
    assert killed_durable > 0, "no kill landed after the batch was durable: " + summary


# --- 2. a full disk -------------------------------------------------------------------------------


def test_full_disk_keeps_the_batch_and_says_so(feed_server, tmp_path):
    path, config = setup(tmp_path, feed_server, 6)
    db, store = config.database_path, Store.from_config(config)
    serve(feed_server, "a", 6, 200, words=60)
    run_cycle(config)
    limit = db.stat().st_size + 64 * 1024
    counts = "SELECT (SELECT count(*) FROM stories), (SELECT count(*) FROM runs)"

    # Each limited cycle's write-ahead log is over half the file: the first fits, two do not.
    items = 600

    def limited_cycle(tag: str) -> subprocess.CompletedProcess[str]:
        serve(feed_server, tag, 6, items, words=60)
        return subprocess.run(
            child_command("cycle", str(path), str(limit)),
            capture_output=True,
            text=True,
            timeout=120,
        )

    # The file may not grow past `limit`. The first cycle still fits: its commit goes to the
    # write-ahead log (the checkpoint that would grow the file waits for a later cycle).
    first = limited_cycle("b")
    assert first.returncode == 0 and f"stored {6 * items}" in first.stdout, first.stdout
    before = query(db, counts)
    assert before == [(1200 + 6 * items, 2)]

    second = limited_cycle("c")
    assert second.returncode == 3, second.stdout + second.stderr
    (error,) = [line for line in second.stdout.splitlines() if line.startswith("error ")]
    assert error.startswith("error StorageError: cannot write ") and "the disk is full" in error
    assert "Traceback" not in second.stderr + second.stdout
    (run_id,) = re.findall(r"^run_id (\S+)$", second.stdout, re.MULTILINE)
    assert kept_run_ids(store) == [run_id]
    assert_whole_cycles(db, len(config.topics))
    assert query(db, counts) == before and stored(db, "c") == 0

    # Space again: the next cycle stores the kept stories (the feeds no longer serve them).
    serve(feed_server, "d", 6, 10)
    report = run_cycle(config)
    assert report.pending_stored == 1 and store.pending_count() == 0
    assert stored(db, "c") == 6 * items and stored(db, "d") == 60
    assert query(db, "SELECT count(*) FROM runs WHERE run_id = ?", [run_id]) == [(1,)]
    assert_no_duplicates(db)


def test_a_cycle_the_full_disk_cannot_keep_says_so_and_leaves_no_litter(feed_server, tmp_path):
    path, config = setup(tmp_path, feed_server, 6)
    store = Store.from_config(config)
    serve(feed_server, "a", 6, 200, words=60)
    run_cycle(config)
    limit = config.database_path.stat().st_size + 64 * 1024
    # A batch larger than the space left: neither the queue nor the database can take it.
    serve(feed_server, "big", 6, 1200, words=60)
    done = subprocess.run(
        child_command("cycle", str(path), str(limit)), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 3, done.stdout + done.stderr
    (error,) = [line for line in done.stdout.splitlines() if line.startswith("error ")]
    assert "the disk is full" in error and "this cycle could not be kept" in error
    assert store.pending_count() == 0
    # What the failed write left would fill the disk further, unseen by the queue's size limit
    # and never removed by a later cycle.
    litter = {p.name: p.stat().st_size for p in store.pending_dir.iterdir()}
    assert not litter, f"left in {store.pending_dir}: {litter}"


# --- 3. a damaged or foreign database file -------------------------------------------------------

DAMAGE = {
    "truncated to half": lambda data: data[: len(data) // 2],
    "truncated to 4 kB": lambda data: data[:4096],
    "random bytes": lambda data: random.Random(7).randbytes(len(data)),
    "emptied": lambda data: b"",
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_database_is_left_alone_and_the_batch_kept(feed_server, tmp_path, damage):
    _, config = setup(tmp_path, feed_server, 6)
    db, store = config.database_path, Store.from_config(config)
    serve(feed_server, "a", 6, 300, words=40)
    run_cycle(config)
    damaged = DAMAGE[damage](db.read_bytes())
    db.write_bytes(damaged)

    serve(feed_server, "b", 6, 20)
    states = store.load_states(config)  # must not raise: feeds are then fetched whole
    assert isinstance(states, dict)
    batch = fetch_and_parse(config, store)
    with pytest.raises(DatabaseDamagedError) as caught:
        store.store_cycle(config, batch)
    message = str(caught.value)
    assert "is damaged or is not a tensionwatch database" in message
    assert "Move it aside" in message and str(store.pending_dir) in message
    assert db.read_bytes() == damaged  # never a new empty database in its place
    assert kept_run_ids(store) == [batch.run_id]

    # The user does as told; the next cycle starts a new database with the kept stories.
    (move,) = re.findall(r"\(mv (\S+) (\S+)\)", message)
    assert move[0] == str(db)
    os.replace(move[0], move[1])
    assert Path(move[1]).read_bytes() == damaged
    serve(feed_server, "c", 6, 5)
    report = run_cycle(config)
    assert report.pending_stored == 1 and store.pending_count() == 0
    assert stored(db, "b") == 120 and stored(db, "c") == 30 and stored(db, "a") == 0
    assert_whole_cycles(db, len(config.topics))
    assert_no_duplicates(db)


def test_explain_against_a_garbage_database_is_one_line(feed_server, tmp_path, capsys):
    path, config = setup(tmp_path, feed_server, 1)
    garbage = random.Random(3).randbytes(300_000)
    config.database_path.write_bytes(garbage)
    assert main(["explain", "--config", str(path), "abc"]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err + captured.out
    assert lines[0].startswith("tensionwatch: ") and "is damaged" in lines[0]
    assert config.database_path.read_bytes() == garbage


# --- 4. a corrupt block inside a valid database --------------------------------------------------


def test_corrupt_block_is_damage_not_a_lock(feed_server, tmp_path):
    _, config = setup(tmp_path, feed_server, 6, storage={"lock_timeout_seconds": 5})
    db, store = config.database_path, Store.from_config(config)
    for tag in ("a", "b"):
        serve(feed_server, tag, 6, 300, words=40)
        run_cycle(config)
    # Overwrite 4 kB in the middle of the block holding stories.story_id, which every cycle
    # reads to tell new stories from known ones (file: 3 header pages, then the blocks).
    with duckdb.connect(str(db), read_only=True) as con:
        ((block_size,),) = con.execute("SELECT block_size FROM pragma_database_size()").fetchall()
        blocks = con.execute(
            "SELECT DISTINCT block_id FROM pragma_storage_info('stories') "
            "WHERE column_name = 'story_id' AND block_id >= 0 ORDER BY block_id"
        ).fetchall()
    data = bytearray(db.read_bytes())
    for (block_id,) in blocks:
        middle = 3 * 4096 + block_id * block_size + block_size // 2
        data[middle : middle + 4096] = random.Random(block_id).randbytes(4096)
    db.write_bytes(bytes(data))
    with pytest.raises(duckdb.Error, match="checksum"):  # the damage is where a cycle reads
        query(db, "SELECT count(DISTINCT story_id) FROM stories")

    serve(feed_server, "c", 6, 20)
    batch = fetch_and_parse(config, store)
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        store.store_cycle(config, batch)
    took = time.monotonic() - started
    message = str(caught.value)
    assert not isinstance(caught.value, DatabaseLockedError)
    assert isinstance(caught.value, DatabaseDamagedError), message
    assert "locked" not in message.lower() and "lock_timeout" not in message
    assert "damaged" in message and "Move it aside" in message
    # Not a speed check: a damaged file must not be waited for as if another process held it.
    assert took < store.lock_timeout, f"took {took:.1f} s: it waited as if the file were locked"
    assert kept_run_ids(store) == [batch.run_id]


# --- 5. damaged files in the pending queue -------------------------------------------------------


def place(folder: Path, text: bytes, mtime: float) -> Path:
    """A file in the queue named like a kept batch, ordered by mtime like one."""
    path = folder / f"20240101T000000{int(mtime) % 1000000:06d}Z-{uuid.uuid4()}.json"
    path.write_bytes(text)
    os.utime(path, (mtime, mtime))
    return path


def test_damaged_pending_files_are_set_aside_and_the_rest_stored(feed_server, tmp_path):
    _, config = setup(tmp_path, feed_server, 4)
    db, store = config.database_path, Store.from_config(config)
    serve(feed_server, "a", 4, 5)
    run_cycle(config)

    # Two cycles killed after keeping their batch, with damaged files among them.
    good = []
    for tag in ("k1", "k2"):
        serve(feed_server, tag, 4, 10)
        batch = fetch_and_parse(config, store)
        good.append((batch.run_id, store.queue.keep(batch)))
    whole = good[0][1].read_bytes()
    base = time.time() - 1000
    os.utime(good[0][1], (base, base))
    os.utime(good[1][1], (base + 20, base + 20))
    damaged = {
        "truncated": place(store.pending_dir, whole[: len(whole) // 2], base + 10),
        "garbage": place(store.pending_dir, random.Random(5).randbytes(5000), base + 30),
        "wrong shape": place(
            store.pending_dir, json.dumps({"run_id": "x", "stories": 3}).encode(), base + 40
        ),
        "a list": place(store.pending_dir, b"[1, 2, 3]", base + 50),
    }
    contents = {name: path.read_bytes() for name, path in damaged.items()}

    serve(feed_server, "own", 4, 3)
    report = run_cycle(config)
    assert report.pending_stored == 2
    assert len(report.new_story_ids) == 12
    assert stored(db, "k1") == 40 and stored(db, "k2") == 40 and stored(db, "own") == 12
    assert query(db, "SELECT count(*) FROM runs WHERE run_id IN (?, ?)", [r for r, _ in good]) == [
        (2,)
    ]
    assert len(report.notes) == len(damaged)
    aside = store.pending_dir / "unreadable"
    for name, path in damaged.items():
        assert any(path.name in note and "could not be read" in note for note in report.notes)
        assert (aside / path.name).read_bytes() == contents[name], name
    assert sorted(p.name for p in aside.iterdir()) == sorted(p.name for p in damaged.values())
    assert store.pending_count() == 0

    # Later cycles are not affected.
    for tag in ("later1", "later2"):
        serve(feed_server, tag, 4, 2)
        later = run_cycle(config)
        assert later.notes == [] and later.pending_stored == 0 and stored(db, tag) == 8
    assert len(list(aside.iterdir())) == len(damaged)
    assert_no_duplicates(db)


def test_deeply_nested_pending_file_is_set_aside(feed_server, tmp_path):
    """Valid JSON of the wrong shape that json.loads cannot even finish (RecursionError)."""
    _, config = setup(tmp_path, feed_server, 2)
    db, store = config.database_path, Store.from_config(config)
    serve(feed_server, "a", 2, 3)
    run_cycle(config)
    store.pending_dir.mkdir(exist_ok=True)
    nested = place(store.pending_dir, b"[" * 100_000 + b"]" * 100_000, time.time() - 100)

    for tag in ("b", "c"):  # every later cycle too, not only the first
        serve(feed_server, tag, 2, 3)
        run_cycle(config)
        assert stored(db, tag) == 6
    assert (store.pending_dir / "unreadable" / nested.name).exists()
    assert store.pending_count() == 0


# --- 6. a database locked for a day --------------------------------------------------------------

DAY_FEEDS, DAY_CYCLES, DAY_ITEMS = 6, 30, 40


def test_a_day_of_locked_cycles_keeps_small_batches_and_stores_them_all(feed_server, tmp_path):
    _, config = setup(
        tmp_path,
        feed_server,
        DAY_FEEDS,
        storage={"lock_timeout_seconds": 0.1, "lock_retry_seconds": 0.05},
        # What is measured is the pending queue. Grouping events reads the titles of the 48 h
        # around each batch, here every kept story (they share one hour), a cost of its own.
        events={"enabled": False},
    )
    db, store = config.database_path, Store.from_config(config)

    def change(feed: int, tag: str, hour: int, items: int = DAY_ITEMS) -> None:
        body = rss(tag, feed, items, words=30)
        modified = format_datetime(datetime(2024, 8, 21, tzinfo=UTC) + timedelta(hours=hour), True)
        feed_server.routes[f"/f{feed}.xml"] = Route(
            body=body, conditional=True, last_modified=modified
        )

    for feed in range(DAY_FEEDS):
        change(feed, "base", 0, items=3)
    run_cycle(config)

    holder = subprocess.Popen(child_command("hold", str(db)), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with feed_workers(config.topics, config.parse.timeout_seconds) as workers:
            for c in range(1, DAY_CYCLES + 1):
                changed = c % DAY_FEEDS
                change(changed, f"c{c}", c)
                asked = len(feed_server.requests)
                with pytest.raises(DatabaseLockedError, match=f"PID {holder.pid}"):
                    run_cycle(config, workers)
                if c == 1:
                    continue  # the locked file's validators could not be read: all fetched
                for request in feed_server.requests[asked:]:
                    headers = {k.lower(): v for k, v in request.headers.items()}
                    if request.path == f"/f{changed}.xml":
                        assert request.status == 200, c
                    else:  # asked with validators kept beside the queue, and not re-sent
                        assert "if-none-match" in headers and request.status == 304, c

            kept = kept_run_ids(store)
            assert len(kept) == DAY_CYCLES
            # What one cycle would keep if it fetched every feed whole (as the first did):
            results = fetch_feeds(config.feeds, {}, config.fetch)
            whole = parse_and_score(config, new_batch(config), results, workers)
            full = len(json.dumps(whole.to_json(), ensure_ascii=False).encode())
            sizes = [path.stat().st_size for path in store.queue.paths()]
            assert sum(sizes) < DAY_CYCLES * full / 3, (sum(sizes), full)

            # A queue at its limit: the cycle is not kept, and the error says so.
            tiny = config.model_copy(
                update={"storage": config.storage.model_copy(update={"max_pending_mb": 0.001})}
            )
            change(0, "unkept", DAY_CYCLES + 1)
            with pytest.raises(DatabaseLockedError) as caught:
                run_cycle(tiny, workers)
            message = str(caught.value)
            assert "this cycle could not be kept" in message
            assert "pending queue" in message and "storage.max_pending_mb" in message
            assert store.pending_count() == DAY_CYCLES
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout:
            holder.stdout.close()

    batch = fetch_and_parse(config, store)
    total = sum(sizes)
    tracemalloc.start()
    try:
        report = store.store_cycle(config, batch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.pending_stored == DAY_CYCLES and store.pending_count() == 0
    print(f"{DAY_CYCLES} kept batches, {total} bytes (a whole cycle: {full}); peak {peak} bytes")
    # Loading them all at once would take several times their size on disk.
    assert peak < total / 2, "the kept batches were held in memory together"

    # Each kept batch is its own run, stored oldest first; nothing twice, nothing lost (the
    # unkept cycle's feed still served its items, asked with the validators from before it).
    rows = query(
        db,
        "SELECT run_id FROM runs WHERE run_id IN (SELECT unnest(?)) ORDER BY stored_at",
        [kept],
    )
    assert [r for (r,) in rows] == kept
    for c in range(1, DAY_CYCLES + 1):
        assert stored(db, f"c{c}") == DAY_ITEMS, c
    assert stored(db, "unkept") == DAY_ITEMS
    assert_whole_cycles(db, len(config.topics))
    assert_no_duplicates(db)


# --- 7. the batch is kept before the write, or the user hears what was lost -----------------------


def test_a_batch_that_cannot_be_kept_is_still_stored_or_reported(
    feed_server, tmp_path, monkeypatch
):
    _, config = setup(tmp_path, feed_server, 3)
    db, store = config.database_path, Store.from_config(config)
    serve(feed_server, "a", 3, 5)
    run_cycle(config)

    def cannot_keep(self: PendingQueue, batch: CycleBatch) -> Path:
        raise StorageError(f"cannot keep the cycle in {self.folder}: Permission denied")

    monkeypatch.setattr(PendingQueue, "keep", cannot_keep)
    serve(feed_server, "b", 3, 5)
    report = run_cycle(config)  # the queue is unusable but the database works
    assert len(report.new_story_ids) == 15 and stored(db, "b") == 15

    db.write_bytes(random.Random(9).randbytes(100_000))
    serve(feed_server, "c", 3, 5)
    with pytest.raises(DatabaseDamagedError) as caught:
        run_cycle(config)
    assert "this cycle could not be kept: cannot keep the cycle" in str(caught.value)
    assert store.pending_count() == 0


# --- 8. found by review of the change -------------------------------------------------------------


def test_a_kept_batch_the_database_refuses_is_set_aside_and_blocks_nothing(feed_server, tmp_path):
    # A kept batch whose feed state holds a mapping where text belongs: DuckDB refuses it with
    # a binder error. It must be set aside once, not retried by (and blocking) every cycle.
    _, config = setup(tmp_path, feed_server, 2)
    serve(feed_server, "a", 2, 5)
    store = Store.from_config(config)
    run_cycle(config)
    serve(feed_server, "b", 2, 5)
    bad = fetch_and_parse(config, store).to_json()
    bad["outcomes"][0]["etag"] = {"a": 1}
    (store.pending_dir / f"20200101T000000000000Z-{bad['run_id']}.json").write_text(
        json.dumps(bad), encoding="utf-8"
    )
    serve(feed_server, "c", 2, 5)
    report = run_cycle(config)
    assert any("refused by the database" in note for note in report.notes)
    assert [p.name for p in (store.pending_dir / "unreadable").iterdir()] == [
        f"20200101T000000000000Z-{bad['run_id']}.json"
    ]
    assert store.queue.paths() == [] and stored(config.database_path, "c") == 10
    serve(feed_server, "d", 2, 5)
    assert run_cycle(config).notes == []


def test_a_kept_batch_scoring_a_story_twice_is_set_aside_and_nothing_doubles(feed_server, tmp_path):
    # story_scores has no key index (migration 007): the cycle itself refuses a batch, edited
    # by hand, that carries one story's score twice, instead of storing it twice.
    _, config = setup(tmp_path, feed_server, 2)
    store = Store.from_config(config)
    serve(feed_server, "a", 2, 5)
    bad = fetch_and_parse(config, store).to_json()
    bad["scores"].append(bad["scores"][0])
    store.pending_dir.mkdir(parents=True, exist_ok=True)
    (store.pending_dir / f"20200101T000000000000Z-{bad['run_id']}.json").write_text(
        json.dumps(bad), encoding="utf-8"
    )
    serve(feed_server, "b", 2, 5)
    report = run_cycle(config)
    assert any("scores story" in note and "twice" in note for note in report.notes)
    assert len(list((store.pending_dir / "unreadable").iterdir())) == 1
    assert stored(config.database_path, "a") == 0 and stored(config.database_path, "b") == 10
    ((scores, distinct),) = query(
        config.database_path,
        "SELECT count(*), count(DISTINCT (story_id, topic, rules_version)) FROM story_scores",
    )
    assert scores == distinct == 10 * len(config.topics)


def test_damaged_feed_states_beside_kept_batches_never_stop_a_cycle(feed_server, tmp_path):
    _, config = setup(tmp_path, feed_server, 2)
    serve(feed_server, "a", 2, 5)
    store = Store.from_config(config)
    store.queue.keep(fetch_and_parse(config, store))  # a batch waits
    (store.pending_dir / "feed_states.json").write_text("[" * 100_000 + "]" * 100_000)
    assert store.load_states(config) == {}  # fetched whole, nothing raised
    report = run_cycle(config)
    assert report.pending_stored == 1 and stored(config.database_path, "a") == 10


def test_a_database_of_someone_elses_is_refused_and_left_untouched(feed_server, tmp_path):
    _, config = setup(tmp_path, feed_server, 1)
    serve(feed_server, "a", 1, 3)
    with duckdb.connect(str(config.database_path)) as con:
        con.execute("CREATE TABLE sales (id INTEGER, amount DOUBLE)")
    before = config.database_path.read_bytes()
    store = Store.from_config(config)
    with pytest.raises(DatabaseDamagedError, match="is not a tensionwatch database"):
        store.store_cycle(config, fetch_and_parse(config, store))
    assert query(config.database_path, "SELECT table_name FROM information_schema.tables") == [
        ("sales",)
    ]
    assert config.database_path.read_bytes() == before
    assert len(store.queue.paths()) == 1  # what was fetched is kept for a usable database


def test_a_batch_stored_again_after_a_crash_changes_no_feed_state(feed_server, tmp_path):
    # Killed between COMMIT and removing the kept file: the next cycle replays the batch. Its
    # failure count and fetch time must not be applied twice.
    _, config = setup(tmp_path, feed_server, 2)
    serve(feed_server, "a", 1, 5)
    feed_server.routes["/f1.xml"] = Route(status=404)
    store = Store.from_config(config)
    batch = fetch_and_parse(config, store)
    store.store_cycle(config, batch)
    replayed = store.queue.keep(batch)  # as if the kept file had survived the commit
    assert replayed.exists()
    run_cycle(config)  # f1 fails again: its second failure
    ((failures,),) = query(
        config.database_path, "SELECT consecutive_failures FROM feeds WHERE feed_id = 'f1'"
    )
    assert failures == 2
    assert query(config.database_path, "SELECT count(*) FROM runs") == [(2,)]
    assert store.queue.paths() == []


def test_what_was_set_aside_is_said_even_when_the_cycle_then_fails(
    feed_server, tmp_path, monkeypatch
):
    _, config = setup(tmp_path, feed_server, 1)
    serve(feed_server, "a", 1, 3)
    run_cycle(config)
    store = Store.from_config(config)
    store.pending_dir.mkdir(exist_ok=True)
    (store.pending_dir / "20200101T000000000000Z-garbage.json").write_bytes(b"\x00garbage")
    batch = fetch_and_parse(config, store)
    real_store_batch = Store._store_batch

    def full_disk_for_this_cycle(self, con, kept):
        # A real full disk cannot be made to fail this one write only (see the disk-full test).
        if kept is batch:
            raise duckdb.IOException("Could not write file: No space left on device")
        return real_store_batch(self, con, kept)

    monkeypatch.setattr(Store, "_store_batch", full_disk_for_this_cycle)
    with pytest.raises(StorageError) as caught:
        store.store_cycle(config, batch)
    assert "the disk is full" in str(caught.value)
    assert "could not be read and was set aside" in str(caught.value)
