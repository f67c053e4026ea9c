"""Readers never block the schedule: cycles publish a read copy, and an analyst holding it open
for a long session does not make any cycle wait or keep its batch."""

import subprocess
import sys

import duckdb

from tensionwatch.config import load_config
from tensionwatch.store import Store
from tests.conftest import write_config
from tests.feedserver import Route
from tests.test_cycle import query, run_cycle

HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("SELECT count(*) FROM stories").fetchall()[0][0], flush=True)
sys.stdin.readline()  # a long session: held open until the test says so
print(con.execute("SELECT count(*) FROM stories").fetchall()[0][0], flush=True)
"""


def feed(first: int, last: int) -> bytes:
    items = "".join(
        f"<item><title>Harbour report number {n}</title><link>https://news.test/{n}</link></item>"
        for n in range(first, last)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


def test_a_reader_held_open_across_three_cycles_blocks_none_of_them(feed_server, tmp_path):
    feed_server.routes["/f.xml"] = Route(body=feed(0, 5))
    config = load_config(write_config(tmp_path, [{"name": "f", "url": feed_server.url("/f.xml")}]))
    run_cycle(config)
    store = Store.from_config(config)
    assert store.read_copy_path.exists() and store.reader_path() == store.read_copy_path

    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store.read_copy_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "5"  # the session is open on the copy
        for cycle in range(1, 4):
            feed_server.routes["/f.xml"] = Route(body=feed(0, 5 + 3 * cycle))
            report = run_cycle(config)
            assert len(report.new_story_ids) == 3  # stored now, not kept for later
            assert store.pending_count() == 0
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "5"  # its snapshot, unchanged under it
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
        reader.stdout.close()

    waits = query(config, "SELECT max(epoch(stored_at - finished_at)) FROM runs")[0][0]
    assert waits < config.storage.lock_timeout_seconds  # no cycle waited for the lock
    assert query(config, "SELECT count(*), count(DISTINCT story_id) FROM stories") == [(14, 14)]
    assert query(config, "SELECT count(*) FROM runs") == [(4,)]
    with duckdb.connect(str(store.read_copy_path), read_only=True) as fresh:
        assert fresh.execute("SELECT count(*) FROM stories").fetchall() == [(14,)]


def test_without_a_read_copy_readers_use_the_database(feed_server, tmp_path):
    feed_server.routes["/f.xml"] = Route(body=feed(0, 2))
    config = load_config(
        write_config(
            tmp_path,
            [{"name": "f", "url": feed_server.url("/f.xml")}],
            storage={"read_copy": False},
        )
    )
    run_cycle(config)
    store = Store.from_config(config)
    assert not store.read_copy_path.exists() and store.reader_path() == store.path


def test_a_read_copy_that_cannot_be_written_is_a_note_and_the_cycle_is_stored(
    feed_server, tmp_path
):
    feed_server.routes["/f.xml"] = Route(body=feed(0, 3))
    config = load_config(write_config(tmp_path, [{"name": "f", "url": feed_server.url("/f.xml")}]))
    store = Store.from_config(config)
    run_cycle(config)
    # Something in the way of the copy (a folder where its partial file goes): a real OSError.
    blocker = store.read_copy_path.with_name(store.read_copy_path.name + ".partial")
    blocker.mkdir()
    feed_server.routes["/f.xml"] = Route(body=feed(0, 5))
    report = run_cycle(config)
    assert len(report.new_story_ids) == 2
    assert any("read copy" in note and "not refreshed" in note for note in report.notes)
    with duckdb.connect(str(store.read_copy_path), read_only=True) as old:
        assert old.execute("SELECT count(*) FROM stories").fetchall() == [(3,)]  # last good copy
    blocker.rmdir()
    run_cycle(config)
    with duckdb.connect(str(store.read_copy_path), read_only=True) as fresh:
        assert fresh.execute("SELECT count(*) FROM stories").fetchall() == [(5,)]
