"""What the read copy costs a cycle, on a database of 1 million scored stories.

Each stored cycle checkpoints the database and copies it whole beside itself
(`data/tensionwatch.read.duckdb`, swapped in with one rename), so that analysts never hold the
file the cycles write. This script builds a database of --stories news-stream stories
(bench/rescore.py's generator and schema) scored under config.yaml's rules, and then times, in
the same run, --repeat times each:

* store        - `store_cycle` of one small cycle (50 new stories) with the read copy off: the
                 baseline a cycle pays today;
* store+copy   - the same with the read copy on: checkpoint, copy, fsync, rename;
* copy alone   - `publish_read_copy` on its own.

It prints medians, the ratio store+copy / store, the database size and the copy's throughput.
How fresh the copy is: it is published at the end of every stored cycle, so readers are at most
one cycle behind (schedule.interval_minutes) plus the copy time.

    .venv/bin/python bench/read_copy.py [--stories 1000000 --repeat 5]
    .venv/bin/python bench/read_copy.py --database DB --workdir DIR   # a copy of DB, in DIR

The second form times the same steps on a copy of an existing database (bench/query.py
--keep builds one of 10 million stories) placed in DIR: put DIR on a filesystem that clones
files (btrfs, XFS) to see the copy's cost there (store.copy_whole_file says which way it went).

No network is used.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rescore import build_db, db_size_mb  # noqa: E402
from tensionwatch.config import load_config  # noqa: E402
from tensionwatch.cycle import CycleBatch  # noqa: E402
from tensionwatch.parse import Story  # noqa: E402
from tensionwatch.rescoring import rescore  # noqa: E402
from tensionwatch.score import compile_topics, score_story  # noqa: E402
from tensionwatch.store import Store, copy_whole_file  # noqa: E402


def small_batch(config, rules, n: int, round_: int) -> CycleBatch:
    now = datetime.now(UTC)
    stories, scores = [], []
    for i in range(n):
        sid = hashlib.sha256(f"bench-{round_}-{i}".encode()).hexdigest()[:16]  # as parse.py
        title = f"Iran warns Israel after strike number {round_} {i}"
        stories.append(Story(sid, "bench", title, "", None, None, now, now, now, "en"))
        scores += [(sid, s) for s in score_story(rules, title, "", "en")]
    versions = {name: t.rules_version() for name, t in config.topics.items()}
    return CycleBatch(f"run-{round_}", now, now, versions, [], stories, scores)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stories", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", help="time a copy of this database instead of building")
    parser.add_argument("--workdir", help="where the database (or the copy) lives (a temp dir)")
    args = parser.parse_args()
    config = load_config(ROOT / "config.yaml")
    rules = compile_topics(config.topics)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        db = Path(tmp) / "tensionwatch.duckdb"
        started = time.monotonic()
        if args.database:
            with open(args.database, "rb") as source, open(db, "wb") as target:
                copy_whole_file(source, target)
        else:
            build_db(db, args.stories, 20240821)
        plain, copying = Store(db), Store(db, read_copy=True)
        if not args.database:
            rescore(plain, config)
        with open(db, "rb") as source, open(Path(tmp) / "probe", "wb") as target:
            method = copy_whole_file(source, target)
        (Path(tmp) / "probe").unlink()
        print(
            f"database ready in {time.monotonic() - started:.0f} s; {db_size_mb(db):.0f} MB; "
            f"this filesystem copies it by {method}",
            flush=True,
        )
        times: dict[str, list[float]] = {"store": [], "store+copy": [], "copy alone": []}
        for round_ in range(args.repeat):
            for name, store in (("store", plain), ("store+copy", copying)):
                batch = small_batch(config, rules, 50, 2 * round_ + (name != "store"))
                began = time.monotonic()
                store.store_cycle(config, batch)
                times[name].append(time.monotonic() - began)
            began = time.monotonic()
            copying.publish_read_copy([])
            times["copy alone"].append(time.monotonic() - began)
            print("  round", round_ + 1, {k: round(v[-1], 2) for k, v in times.items()}, flush=True)
        size = db_size_mb(db)
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"\nMedians of {args.repeat} rounds, database {size:.0f} MB "
        f"({args.database or f'{args.stories:,} stories'}):\n"
    )
    print("| step | seconds |\n|---|---:|")
    for name, value in medians.items():
        print(f"| {name} | {value:.2f} |")
    print(
        f"\nstore+copy / store: {medians['store+copy'] / medians['store']:.1f}x; "
        f"copy {size / medians['copy alone']:.0f} MB/s"
    )
    for name, values in times.items():
        print(f"all runs, {name}: " + ", ".join(f"{v:.2f}" for v in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
