"""Replay a corpus of real news through real cycles, week by week, into a DuckDB file.

The corpus (`../shared/realdata/corpus-2023h1/news.jsonl.gz`: one JSON object per entry with
link, title, description, published, source, language) is read at run time and never copied
into the project. Each source becomes a feed served from 127.0.0.1; for each 7-day window the
feed serves the entries published in it, and one cycle (fetch → parse and score in worker
processes → store) runs, as if tensionwatch had polled the feeds weekly. The database it leaves
is what `tensionwatch audit` samples:

    .venv/bin/python bench/replay_corpus.py --db /tmp/corpus.duckdb
    .venv/bin/tensionwatch audit --config /tmp/corpus-config.yaml --sample /tmp/audit.jsonl

It prints per week the stories stored and the stories each topic flagged, and at the end the
totals and the time per cycle. Nothing is reached but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.feedserver

from tensionwatch.config import Feed, load_config  # noqa: E402
from tensionwatch.cycle import new_batch, parse_and_score  # noqa: E402
from tensionwatch.fetch import fetch_feeds  # noqa: E402
from tensionwatch.store import Store  # noqa: E402
from tensionwatch.workers import feed_workers  # noqa: E402
from tests.feedserver import FeedServer, Route  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "realdata" / "corpus-2023h1" / "news.jsonl.gz"
START = datetime(2023, 1, 1, tzinfo=UTC)


def read_corpus(path: Path) -> dict[str, list[dict]]:
    """Entries grouped by their feed (`source`), each with a parsed `when`."""
    by_source: dict[str, list[dict]] = defaultdict(list)
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            entry = json.loads(line)
            entry["when"] = datetime.fromisoformat(entry["published"])
            by_source[entry["source"]].append(entry)
    return by_source


def rss(entries: list[dict]) -> bytes:
    items = "".join(
        "<item>"
        f"<title>{escape(e['title'] or '')}</title>"
        f"<link>{escape(e['link'])}</link><guid>{escape(e['link'])}</guid>"
        f"<description>{escape(e['description'] or '')}</description>"
        f"<pubDate>{format_datetime(e['when'])}</pubDate>"
        "</item>"
        for e in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>replay</title>'
        f"{items}</channel></rss>"
    ).encode()


def feed_name(number: int, source: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", source.lower().split("//", 1)[-1])[:40].strip("_")
    return f"f{number:03d}_{slug}"


def write_replay_config(path: Path, db: Path, server: FeedServer, sources: dict) -> dict:
    """A config with the shipped topics and one feed per source; returns source → feed name."""
    shipped = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    names, feeds = {}, []
    for number, (source, entries) in enumerate(sorted(sources.items()), 1):
        names[source] = feed_name(number, source)
        language = (entries[0].get("language") or "en")[:2].lower()
        # The feeds are served from 127.0.0.1: the outlet is the source's own host.
        outlet = Feed(name="x", url=source if "//" in source else f"https://{source}").outlet_name
        feeds.append(
            {
                "name": names[source],
                "url": server.url(f"/{number}.xml"),
                "language": language,
                "outlet": outlet or names[source],
            }
        )
    config = {
        "storage": {"path": str(db)},
        "fetch": {"concurrency": 32, "per_host_concurrency": 32, "retries": 0},
        "feeds": feeds,
        "topics": shipped["topics"],
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--db", type=Path, required=True, help="DuckDB file to create")
    parser.add_argument("--weeks", type=int, default=27, help="7-day windows from 2023-01-01")
    args = parser.parse_args()
    if args.db.exists():
        print(f"{args.db} exists: give a new path", file=sys.stderr)
        return 2

    sources = read_corpus(args.corpus)
    server = FeedServer().start()
    config_path = args.db.with_name(args.db.stem + "-config.yaml")
    write_replay_config(config_path, args.db, server, sources)
    config = load_config(config_path)
    store = Store.from_config(config)
    numbers = {source: n for n, source in enumerate(sorted(sources), 1)}
    print(
        f"{sum(map(len, sources.values()))} entries in {len(sources)} feeds; config {config_path}"
    )
    durations = []
    try:
        with feed_workers(
            config.topics, config.parse.timeout_seconds, config.parse.workers
        ) as pool:
            for week in range(args.weeks):
                start, end = (
                    START + timedelta(days=7 * week),
                    START + timedelta(days=7 * (week + 1)),
                )
                for source, entries in sources.items():
                    these = [e for e in entries if start <= e["when"] < end]
                    server.routes[f"/{numbers[source]}.xml"] = Route(body=rss(these))
                began = time.monotonic()
                results = fetch_feeds(config.feeds, store.load_states(config), config.fetch)
                batch = parse_and_score(config, new_batch(config), results, pool)
                report = store.store_cycle(config, batch)
                durations.append(time.monotonic() - began)
                new = report.new_story_ids
                flagged = defaultdict(int)
                for sid, score in batch.scores:
                    if sid in new and score.relevant:
                        flagged[score.topic] += 1
                print(
                    f"week of {start:%Y-%m-%d}: {len(new)} stories, flagged "
                    + ", ".join(f"{t} {flagged[t]}" for t in config.topics)
                    + f" ({durations[-1]:.1f} s)"
                )
    finally:
        server.stop()
    durations.sort()
    print(f"median cycle {durations[len(durations) // 2]:.1f} s; database {args.db}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
