"""Replay six months of real news through real cycles, every six hours, then backtest alerts.

The corpus (`../shared/realdata/corpus-2023h1/`) is read at run time and never copied into the
project. Each of the 334 sources in `counts.tsv.gz` becomes a feed served from 127.0.0.1. For
each six-hour slot from 2023-01-01 to 2023-07-01, every feed serves the corpus entries it
published in the slot, plus placeholder stories ("Placeholder story …", about nothing) that
fill each day and source up to its real total in `counts.tsv.gz`, so the share's denominator
is the real volume. One real cycle per slot (fetch → parse and score in worker processes →
store); the cycle's clock is set to the slot's end before storing (its fetches and first-seen
times), as if tensionwatch had polled then. Then `alerting.backtest` (what `tensionwatch alerts
backtest` runs) over the whole period, with the shipped alert settings.

    .venv/bin/python bench/alerts_corpus.py --db /tmp/alerts-corpus.duckdb
    .venv/bin/tensionwatch alerts backtest --config /tmp/alerts-corpus-config.yaml \\
        --since 2023-01-01 --until 2023-07-01

Nothing is reached but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.replay_corpus import DEFAULT_CORPUS, feed_name, read_corpus, rss  # noqa: E402
from tensionwatch.alerting import backtest  # noqa: E402
from tensionwatch.config import Feed, load_config  # noqa: E402
from tensionwatch.cycle import new_batch, parse_and_score  # noqa: E402
from tensionwatch.fetch import fetch_feeds  # noqa: E402
from tensionwatch.store import Store  # noqa: E402
from tensionwatch.workers import feed_workers  # noqa: E402
from tests.feedserver import FeedServer, Route  # noqa: E402

START, END = datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 7, 1, tzinfo=UTC)
SLOT = timedelta(hours=6)


def read_counts(path: Path) -> dict[tuple[str, str], int]:
    counts = {}
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        next(lines)
        for line in lines:
            day, source, entries = line.rstrip("\n").split("\t")
            counts[day, source] = int(entries)
    return counts


def language_of(source: str, entries: list[dict]) -> str:
    if entries and entries[0].get("language"):
        return entries[0]["language"][:2].lower()
    return "pl" if ".pl/" in source or source.endswith(".pl") else "en"


def slot_entries(corpus: dict, counts: dict, sources: list[str]) -> dict:
    """(source, slot start) → entries: the corpus's, and placeholders up to each day's total."""
    by_slot: dict[tuple[str, datetime], list[dict]] = defaultdict(list)
    real_per_day: Counter = Counter()
    for source, entries in corpus.items():
        for e in entries:
            if START <= e["when"] < END:
                slot = START + (e["when"] - START) // SLOT * SLOT
                by_slot[source, slot].append(e)
                real_per_day[e["when"].date().isoformat(), source] += 1
    number = {s: n for n, s in enumerate(sources, 1)}
    for (day, source), total in counts.items():
        missing = total - real_per_day[day, source]
        midnight = datetime.fromisoformat(day).replace(tzinfo=UTC)
        for i in range(max(missing, 0)):
            when = midnight + (i + 0.5) * timedelta(days=1) / missing
            by_slot[source, START + (when - START) // SLOT * SLOT].append({
                "title": f"Placeholder story {number[source]} {day} {i}",
                "link": f"https://placeholder.test/{number[source]}/{day}/{i}",
                "description": "", "when": when,
            })  # fmt: skip
    return by_slot


def write_config(path: Path, db: Path, server: FeedServer, sources: list[str], corpus) -> None:
    shipped = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    feeds = []
    for number, source in enumerate(sources, 1):
        outlet = Feed(name="x", url=source if "//" in source else f"https://{source}").outlet_name
        feeds.append({
            "name": feed_name(number, source), "url": server.url(f"/{number}.xml"),
            "language": language_of(source, corpus.get(source, [])),
            "outlet": outlet or feed_name(number, source),
        })  # fmt: skip
    config = {
        "storage": {"path": str(db), "read_copy": False},
        "fetch": {"concurrency": 32, "per_host_concurrency": 32, "retries": 0},
        "feeds": feeds,
        "topics": shipped["topics"],
        "alerts": shipped.get("alerts", {}),
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--db", type=Path, required=True, help="DuckDB file to create")
    parser.add_argument("--days", type=int, default=181, help="days replayed from 2023-01-01")
    args = parser.parse_args()
    if args.db.exists():
        print(f"{args.db} exists: give a new path", file=sys.stderr)
        return 2
    corpus = read_corpus(args.corpus)
    counts = read_counts(args.corpus.with_name("counts.tsv.gz"))
    sources = sorted({source for _, source in counts} | set(corpus))
    by_slot = slot_entries(corpus, counts, sources)
    server = FeedServer().start()
    config_path = args.db.with_name(args.db.stem + "-config.yaml")
    write_config(config_path, args.db, server, sources, corpus)
    config = load_config(config_path)
    store = Store.from_config(config)
    slots = [START + i * SLOT for i in range(args.days * 4)]
    print(f"{len(sources)} feeds, {sum(map(len, by_slot.values())):,} entries "
          f"({sum(map(len, corpus.values())):,} from the corpus); config {config_path}",
          flush=True)  # fmt: skip
    began = time.monotonic()
    try:
        with feed_workers(
            config.topics, config.parse.timeout_seconds, config.parse.workers
        ) as pool:
            for i, slot in enumerate(slots):
                for number, source in enumerate(sources, 1):
                    entries = by_slot.get((source, slot), [])
                    server.routes[f"/{number}.xml"] = Route(body=rss(entries))
                results = fetch_feeds(config.feeds, store.load_states(config), config.fetch)
                batch = parse_and_score(config, new_batch(config), results, pool)
                polled = slot + SLOT - timedelta(minutes=1)  # the cycle's clock: the slot's end
                batch = replace(
                    batch, started_at=polled, finished_at=polled,
                    outcomes=[replace(o, started_at=polled) for o in batch.outcomes],
                    stories=[replace(s, first_seen_at=polled) for s in batch.stories],
                )  # fmt: skip
                store.store_cycle(config, batch)
                if i % 40 == 0:
                    print(f"{slot:%Y-%m-%d %H:%M}: {len(batch.stories)} stories "
                          f"({time.monotonic() - began:.0f} s)", flush=True)  # fmt: skip
    finally:
        server.stop()
    replayed = time.monotonic() - began
    found = backtest(store, config, since=START, until=START + timedelta(days=args.days))
    print(f"\nreplayed {len(slots)} cycles in {replayed:.0f} s; {len(found)} alerts:\n")
    for a in found:
        v, w = a.decision.verdict, a.decision.verdict.window
        print(f"- {w.topic} {w.start:%Y-%m-%d %H:%M} +{w.hours:g}h {v.severity} z {v.z:.1f} "
              f"{v.metric} {v.value:.4f} (median {v.median:.4f}) {a.decision.why}")  # fmt: skip
        for e in a.top_events:
            print(f"    {e['title'][:110]} ({e['outlets']} outlets, {e['score']:g})")
    per_month = Counter((a.decision.verdict.window.topic, f"{a.decision.verdict.window.end:%Y-%m}")
                        for a in found)  # fmt: skip
    print("\nalerts per topic and month: "
          + ", ".join(f"{t} {m}: {n}" for (t, m), n in sorted(per_month.items())))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
