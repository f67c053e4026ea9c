"""Soak: many cycles back to back against feeds that change, fail and recover at random.

A feed server on 127.0.0.1 holds --feeds feeds (default 40). Before each cycle every feed may
gain new stories (its newest 30 stay in the feed), and may, at random and for a few cycles,
answer 500, 429 with a Retry-After, a body that is not a feed, or a feed cut off mid-way (the
entries before the cut are recovered); then it recovers. Now and then an analyst's session
holds the database with a read-write connection through a cycle, so that cycle's batch waits
in the pending queue and is stored by a later one. Conditional GET answers 304 when a feed
has not changed.

Each cycle runs the steps the Prefect flow runs — cycle.poll_feeds, parse_and_score (one
worker pool for the soak, as a served deployment's process would start one per run),
store_cycle, the alert step — on a clock that moves 15 minutes a cycle, as under the default
schedule (200 cycles are 50 hours of polling; every feed comes due as it would). Prefect is
not in the loop: bench/prefect_cost.py measures what it adds to a cycle.

It reports cycles completed, stories stored against stories served (every story a feed put in
a body the server sent with 200 must be stored once: equal), duplicates (0), peak memory
(VmHWM of this process) and the database's size as it grows.

    .venv/bin/python bench/soak.py [--cycles 200 --feeds 40 --seed 7]

Nothing is reached but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tensionwatch.alerting import monitor  # noqa: E402
from tensionwatch.config import load_config  # noqa: E402
from tensionwatch.cycle import new_batch, parse_and_score, poll_feeds  # noqa: E402
from tensionwatch.errors import StorageError  # noqa: E402
from tensionwatch.store import Store  # noqa: E402
from tensionwatch.workers import feed_workers  # noqa: E402
from tests.feedserver import FeedServer, Route  # noqa: E402

KEPT = 30  # stories a feed carries
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=15)
FAULTS = ("500", "429", "garbage", "cut")
HEADLINES = [
    "Israel strikes {x} sites in Iran as drones are intercepted",
    "Iran warns Israel of retaliation after {x} attack",
    "Ceasefire talks on {x} resume as Iran and Israel trade threats",
    "Türkiye tightens export controls on {x} dual-use components to Russia",
    "Russia buys {x} machine tools through Turkish re-exporters, officials say",
    "Local council approves {x} budget for new parks",
    "Football: {x} win the derby in extra time",
    "Markets steady as {x} prices ease",
]


class SimulatedFeed:
    def __init__(self, n: int, rng: random.Random) -> None:
        self.n = n
        self.rng = rng
        self.items: list[tuple[str, str, datetime]] = []  # (guid, title, published)
        self.fault: str | None = None
        self.fault_left = 0

    def advance(self, now: datetime, counter: list[int]) -> None:
        for _ in range(self.rng.choice((0, 0, 1, 1, 2, 3))):
            counter[0] += 1
            title = self.rng.choice(HEADLINES).format(x=f"#{counter[0]}")
            self.items.append((f"soak-{counter[0]}", title, now))
        self.items = self.items[-KEPT:]
        if self.fault_left:
            self.fault_left -= 1
            if not self.fault_left:
                self.fault = None
        elif self.rng.random() < 0.04:
            self.fault, self.fault_left = self.rng.choice(FAULTS), self.rng.randint(1, 6)

    def body(self) -> bytes:
        items = "".join(
            f"<item><title>{title}</title><guid>{guid}</guid>"
            f"<link>https://soak.example/{self.n}/{guid}</link>"
            f"<pubDate>{format_datetime(published)}</pubDate>"
            "<description>Officials said more details would follow.</description></item>"
            for guid, title, published in reversed(self.items)
        )
        return (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Soak {self.n}</title>'
            f"{items}</channel></rss>"
        ).encode()

    def route(self) -> Route:
        if self.fault == "500":
            return Route(status=500)
        if self.fault == "429":
            # Longer than a cycle waits: the feed is not asked again until the time it gave.
            return Route(status=429, extra_headers={"Retry-After": "600"})
        if self.fault == "garbage":
            return Route(body=b"<html><body>Service page</body></html>", content_type="text/html")
        body = self.body()
        if self.fault == "cut":
            return Route(body=body[: len(body) * 2 // 3])  # the entries before the cut count
        # Last-Modified moves with the newest story, as a real server's does.
        newest = max((published for _, _, published in self.items), default=EPOCH)
        return Route(
            body=body, conditional=True, last_modified=format_datetime(newest, usegmt=True)
        )


def served_guids(server: FeedServer, routes: dict[str, Route]) -> set[str]:
    """Guids the server sent in 200 answers since the last call (parsed from the bodies)."""
    sent: set[str] = set()
    for request in server.requests:
        route = routes.get(request.path)
        if route is None or request.status != 200 or not route.body.startswith(b"<?xml"):
            continue
        text = route.body.decode()
        for chunk in text.split("<guid>")[1:]:
            if "</guid>" in chunk:  # a cut body's last guid may be cut too: not sent whole
                sent.add(chunk.split("</guid>")[0])
    server.requests.clear()
    return sent


def hold_database(path: Path) -> subprocess.Popen[str]:
    """An analyst's session in another process: a read-write connection held until its stdin
    closes (DuckDB lets one process write; within one process connections would share it)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, duckdb\n"
         f"con = duckdb.connect({str(path)!r})\n"
         "print('held', flush=True)\n"
         "sys.stdin.read()\n"
         "con.close()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--feeds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hold-every", type=int, default=25, help="an analyst holds the db")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    server = FeedServer().start()
    feeds = [SimulatedFeed(n, rng) for n in range(args.feeds)]
    served: set[str] = set()
    counter = [0]
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tw-soak-") as tmp:
        raw = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
        raw["feeds"] = [
            {"name": f"soak_{f.n:03d}", "url": server.url(f"/soak{f.n}.xml"),
             "outlet": f"outlet{f.n % 13}"}
            for f in feeds
        ]  # fmt: skip
        raw["storage"] = {"path": str(Path(tmp) / "tw.duckdb"), "lock_timeout_seconds": 1}
        raw["fetch"] = {**raw.get("fetch", {}), "per_host_concurrency": 16, "retries": 0}
        config_path = Path(tmp) / "config.yaml"
        config_path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        config = load_config(config_path)
        store = Store.from_config(config)
        clock = datetime.now(UTC)
        sizes: list[tuple[int, float, float, int]] = []
        completed = stored_later = held = 0
        with feed_workers(config.topics, config.parse.timeout_seconds, 2) as workers:
            for cycle in range(1, args.cycles + 1):
                clock += STEP
                for f in feeds:
                    f.advance(clock, counter)
                    server.routes[f"/soak{f.n}.xml"] = f.route()
                results = poll_feeds(config, store.load_states(config), now=clock)
                served |= served_guids(server, server.routes)
                batch = parse_and_score(config, new_batch(config), results, workers)
                # Never the last cycle: it stores what the last held one kept.
                hold = args.hold_every and cycle % args.hold_every == 0 and cycle < args.cycles
                analyst = hold_database(store.path) if hold else None
                try:
                    report = store.store_cycle(config, batch)
                    completed += 1
                    stored_later += report.pending_stored
                except StorageError:
                    held += 1  # kept in pending: the next cycle stores it
                finally:
                    if analyst is not None:
                        analyst.communicate("")  # closes its stdin: it lets go and ends
                if not hold:
                    monitor(store, config, batch.run_id, now=clock)
                if cycle % max(1, args.cycles // 8) == 0 or cycle == args.cycles:
                    size = store.path.stat().st_size / 1e6
                    sizes.append((cycle, size, vm_hwm_mb(), len(served)))
                    print(f"cycle {cycle}: database {size:.1f} MB, peak {vm_hwm_mb():.0f} MB, "
                          f"{len(served)} stories served", flush=True)  # fmt: skip
        with duckdb.connect(str(store.path), read_only=True) as con:
            guids = {row[0] for row in con.execute("SELECT guid FROM stories").fetchall()}
            (dupes,) = con.execute("SELECT count(*) - count(DISTINCT guid) FROM stories").fetchone()
            (score_dupes,) = con.execute(
                "SELECT count(*) - count(DISTINCT (story_id, topic, rules_version)) "
                "FROM story_scores"
            ).fetchone()
            runs = con.execute("SELECT count(*) FROM runs").fetchone()[0]
            outcomes = dict(
                con.execute("SELECT outcome, count(*) FROM fetches GROUP BY 1").fetchall()
            )
        pending_left = store.pending_count()
    server.stop()
    missing = served - guids
    extra = guids - served
    minutes = (time.monotonic() - began) / 60
    print(f"\n{args.cycles} cycles of {args.feeds} feeds (seed {args.seed}) in {minutes:.1f} min\n")
    print("| measure | value |\n|---|---:|")
    print(f"| cycles stored on time | {completed} |")
    print(f"| cycles kept while an analyst held the database, stored later | {held} |")
    print(f"| kept cycles stored by a later cycle | {stored_later} |")
    print(f"| cycles left in pending at the end | {pending_left} |")
    print(f"| runs in the database | {runs} |")
    print(f"| stories served (in a 200 body) | {len(served)} |")
    print(f"| stories stored | {len(guids)} |")
    print(f"| served but not stored | {len(missing)} |")
    print(f"| stored but never served | {len(extra)} |")
    print(f"| duplicate stories / duplicate scores | {dupes} / {score_dupes} |")
    print(f"| peak memory (VmHWM) | {vm_hwm_mb():.0f} MB |")
    print("| fetch outcomes | " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) + " |")
    print("\n| after cycle | database (MB) | peak memory (MB) | stories served |")
    print("|---:|---:|---:|---:|")
    for cycle, size, peak, n in sizes:
        print(f"| {cycle} | {size:.1f} | {peak:.0f} | {n} |")
    ok = not missing and not extra and dupes == 0 and score_dupes == 0
    print("\nverdict:", "stored = served, no duplicates" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
