"""A child process for tests/test_storage_faults.py: one core cycle (no Prefect), or a lock.

    python tests/storage_child.py cycle CONFIG            one cycle; prints `run_id …` first
    python tests/storage_child.py cycle CONFIG FSIZE      the same with RLIMIT_FSIZE = FSIZE
    python tests/storage_child.py hold DATABASE           hold DuckDB's write lock until killed

`cycle` prints `stored <n new stories>` and exits 0, or prints `error <Type>: <message>` and
exits 3 when store_cycle raises a StorageError (the message a user would be shown). With
TW_CHILD_MARKS=1 it also prints when the batch was kept and when it left the queue (for the
test to report how a cycle's time splits; the killed cycles run without the marks).
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time

T0 = time.monotonic()


def mark(what: str) -> None:
    print(f"{what} {time.monotonic() - T0:.3f}", flush=True)


def cycle(config_file: str, fsize: int | None) -> int:
    if fsize is not None:
        # A "disk" that is full past fsize bytes: writes past it fail with EFBIG, not SIGXFSZ.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    from tensionwatch.config import load_config
    from tensionwatch.cycle import new_batch, parse_and_score
    from tensionwatch.errors import StorageError
    from tensionwatch.fetch import fetch_feeds
    from tensionwatch.pending import PendingQueue
    from tensionwatch.store import Store

    if os.environ.get("TW_CHILD_MARKS"):
        keep, remove = PendingQueue.keep, PendingQueue.remove

        def marked_keep(self, batch):  # type: ignore[no-untyped-def]
            path = keep(self, batch)
            mark("kept")
            return path

        def marked_remove(self, path):  # type: ignore[no-untyped-def]
            mark("committed")
            remove(self, path)

        PendingQueue.keep = marked_keep  # type: ignore[method-assign]
        PendingQueue.remove = marked_remove  # type: ignore[method-assign]

    mark("imported")
    config = load_config(config_file)
    store = Store.from_config(config)
    batch = new_batch(config)
    print(f"run_id {batch.run_id}", flush=True)
    results = fetch_feeds(config.feeds, store.load_states(config), config.fetch)
    mark("fetched")
    parse_and_score(config, batch, results)
    mark("parsed")
    try:
        report = store.store_cycle(config, batch)
    except StorageError as exc:
        print(f"error {type(exc).__name__}: {exc}", flush=True)
        return 3
    mark("done")
    print(f"stored {len(report.new_story_ids)}", flush=True)
    return 0


def hold(database: str) -> int:
    import duckdb

    con = duckdb.connect(database)
    print("locked", flush=True)
    try:
        time.sleep(600)
    finally:
        con.close()
    return 0


if __name__ == "__main__":
    mode, target, *rest = sys.argv[1:]
    if mode == "cycle":
        sys.exit(cycle(target, int(rest[0]) if rest else None))
    sys.exit(hold(target))
