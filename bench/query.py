"""How fast the trend views answer on a big database, and whether a cycle slows as history grows.

Builds, in a temporary folder, a database with the project's schema (`Store.migrate`) holding
--stories synthetic scored stories (default 10,000,000) over --years years (3), written by
DuckDB from generate_series so that building takes minutes, not hours:
- 60 feeds of 40 outlets, one in five in Turkish; a fetch row per feed every 6 hours;
- per story, a score row for each of the two topics: 4% relevant to iran_israel, 1% to tr_ru,
  with a score of -2 to 20 and threat / act points; `matches` names two signal terms;
- every story in `story_events` (one in ten joins the event of the story before it), with its
  headline words as a cycle keeps them;
- the trend tables a cycle keeps (`Store.rebuild_trend_tables`);
- the rule versions of config.yaml, current.

Then it times, --repeat times each (medians), through `tensionwatch sql`'s read-only connection:
- `topic_daily` for all topics (target ≤ 1 s);
- `topic_trend` for one topic and 90 days (≤ 0.3 s);
- `top_stories` for one day (≤ 0.2 s);
and two kinds of real cycle (`store_cycle`, read copy off, story ids hashed as parse.py makes
them) on that database against the same cycle on an empty one (target: within 2× of its
time), with peak memory (VmHWM of a child process each, target within 1.2×), and against a
third database that holds only the last --recent-days (28) of the same stream: the same news
arriving at the same rate, without the years before. The empty database separates what a
cycle costs from what the news around it costs (the stories of its grouping window and of
today's buckets); the recent one separates what history costs:
- 50 stories, all new;
- polling as it happens: 60 feeds' bodies of 40 entries, 2,350 of them stored by the cycle
  before and 50 new.

    .venv/bin/python bench/query.py [--stories 10000000 --years 3 --repeat 5]

No network is used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.read_copy import small_batch  # noqa: E402
from tensionwatch.config import load_config  # noqa: E402
from tensionwatch.cycle import CycleBatch  # noqa: E402
from tensionwatch.parse import Story  # noqa: E402
from tensionwatch.query import run_query  # noqa: E402
from tensionwatch.score import compile_topics, score_story  # noqa: E402
from tensionwatch.store import Store  # noqa: E402

QUERIES = {
    "topic_daily, all topics": "SELECT * FROM topic_daily",
    "topic_trend, one topic, 90 days": (
        "SELECT * FROM topic_trend WHERE topic = 'iran_israel' AND day >= now() - INTERVAL 90 DAY"
    ),
    "top_stories, one day": ("SELECT * FROM top_stories WHERE day = CAST(now() AS DATE) - 10"),
}
KINDS = {
    "new": "50 stories, all new",
    "polling": "60 feeds x 40 entries, 50 new",
}
TARGETS = {
    "topic_daily, all topics": 1.0,
    "topic_trend, one topic, 90 days": 0.3,
    "top_stories, one day": 0.2,
}

BUILD = """
INSERT INTO feeds (feed_id, url, language, added_at, outlet, last_ok_at, consecutive_failures)
SELECT 'feed_' || i, 'https://news' || i || '.example.com/rss', CASE WHEN i % 5 = 0 THEN 'tr' ELSE 'en' END,
       now() - INTERVAL ($years * 365) DAY, 'outlet' || (i % 40), now(), 0
FROM range(60) t(i);

INSERT INTO stories
SELECT story_key(n), 'feed_' || (n % 60), 'bench', 'Synthetic headline number ' || n, '',
       'https://news.example.com/' || n, NULL, ts, ts, ts,
       CASE WHEN n % 60 % 5 = 0 THEN 'tr' ELSE 'en' END
FROM (SELECT n, $now - to_seconds(CAST(n * ($years * 365 * 86400.0 / $stories) AS BIGINT)) AS ts
      FROM range($stories) t(n));

INSERT INTO story_scores
SELECT story_key(n), topic, v.rules_version,
       CASE WHEN relevant THEN CAST(hash(n, topic) % 23 AS INTEGER) - 2 ELSE 0 END,
       relevant,
       CASE WHEN relevant
            THEN '{"signals": [{"term": "strike", "points": 3, "class": "act", "role": "signal"},'
                 || ' {"term": "warn*", "points": 1, "class": "threat", "role": "signal"}]}'
            ELSE '{"actors": {}}' END,
       now(), true,
       CASE WHEN relevant THEN 1 ELSE 0 END, CASE WHEN relevant THEN 3 ELSE 0 END,
       $now - to_seconds(CAST(n * ($years * 365 * 86400.0 / $stories) AS BIGINT))
FROM (SELECT n, topic,
             hash(n, topic) % 1000 < CASE topic WHEN 'iran_israel' THEN 40 ELSE 10 END AS relevant
      FROM range($stories) t(n), (VALUES ('iran_israel'), ('tr_ru')) AS x(topic))
JOIN rule_versions AS v USING (topic);

INSERT INTO story_events
SELECT story_key(n), story_key(CASE WHEN n % 10 = 1 THEN n - 1 ELSE n END),
       CASE WHEN n % 10 = 1 THEN 0.7 END, now(), ts, ts,
       ['headline', 'number', 'synthetic', CAST(n AS VARCHAR)]
FROM (SELECT n, $now - to_seconds(CAST(n * ($years * 365 * 86400.0 / $stories) AS BIGINT)) AS ts
      FROM range($stories) t(n));

INSERT INTO fetches
SELECT 'x' || c || '-' || i, 'r' || c, 'feed_' || i, 'u', NULL,
       now() - to_hours(6 * c), 120, 1, CASE WHEN (c + i) % 50 = 0 THEN 'error' ELSE 'ok' END,
       200, 1000, 10, 2, NULL, NULL
FROM range(CAST($years * 365 * 4 AS INTEGER)) a(c), range(60) b(i);
"""


def build(path: Path, stories: int, years: float) -> float:
    started = time.monotonic()
    config = load_config(ROOT / "config.yaml")
    store = Store(path)
    with store.connect() as con:
        store.migrate(con)
        store.record_rule_versions(con, config)
        # Story ids as the cycle makes them (parse.story_id): 16 hex digits of a hash, in no
        # order, so no lookup by id is helped by the ids' order.
        con.execute("CREATE TEMP MACRO story_key(n) AS substr(md5(CAST(n AS VARCHAR)), 1, 16)")
        # One moment for every statement: a score's event_at is its story's, as in a cycle.
        now = f"TIMESTAMPTZ '{datetime.now(UTC).isoformat()}'"
        for statement in BUILD.split(";\n\n"):
            sql = statement.replace("$stories", str(stories)).replace("$years", f"{years:.6f}")
            sql = sql.replace("$now", now)
            con.execute(sql)
        store.rebuild_trend_tables(con)  # as the cycles that stored these stories would have
        con.execute("CHECKPOINT")
    return time.monotonic() - started


def time_queries(store: Store, repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in QUERIES}
    for _ in range(repeat):
        for name, sql in QUERIES.items():
            began = time.monotonic()
            result = run_query(store, sql)
            times[name].append(time.monotonic() - began)
            if not result.rows:
                raise SystemExit(f"{name}: no rows")
    return times


FEEDS, CARRIED, NEW = 60, 40, 50


def polling_batch(config, rules, round_: int) -> CycleBatch:
    """What polling 60 feeds brings: 40 entries a feed, the latest 2,400 stories of a stream
    that gains 50 a cycle, so 2,350 of them were stored by the cycle before."""
    now = datetime.now(UTC)
    first = round_ * NEW
    stories, scores = [], []
    for n in range(first, first + FEEDS * CARRIED):
        sid = hashlib.sha256(f"stream-{n}".encode()).hexdigest()[:16]  # as parse.py
        title = f"Officials in region {n % 97} discuss talks on item {n}"
        at = now - timedelta(minutes=(first + FEEDS * CARRIED - n))
        stories.append(Story(sid, f"feed_{n % FEEDS}", title, "", None, None, at, now, at, "en"))
        scores += [(sid, s) for s in score_story(rules, title, "", "en")]
    versions = {name: t.rules_version() for name, t in config.topics.items()}
    return CycleBatch(f"poll-{round_}", now, now, versions, [], stories, scores)


def child_cycle(db: str, round_: int, kind: str) -> None:
    """One store_cycle; prints seconds and VmHWM (MB) as JSON."""
    config = load_config(ROOT / "config.yaml")
    rules = compile_topics(config.topics)
    store = Store(Path(db))  # read copy off: the cycle alone
    if kind == "new":
        batch = small_batch(config, rules, NEW, round_)
    else:
        batch = polling_batch(config, rules, round_)
    began = time.monotonic()
    store.store_cycle(config, batch)
    seconds = time.monotonic() - began
    peak = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak}))


def run_cycle(db: Path, round_: int, kind: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(db), "--round", str(round_), "--kind", kind],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stories", type=int, default=10_000_000)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--recent-days", type=int, default=28)
    parser.add_argument("--keep", help="build the databases in this folder once, and reuse them")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="new", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_cycle(args.child, args.round, args.kind)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        empty, big = folder / "empty.duckdb", folder / "big.duckdb"
        recent = folder / f"recent{args.recent_days}.duckdb"
        if not (args.keep and big.exists()):
            build(empty, 0, args.years)
            seconds = build(big, args.stories, args.years)
            print(f"built {args.stories:,} stories in {seconds:.0f} s", flush=True)
        if not (args.keep and recent.exists()):
            share = args.recent_days / (args.years * 365)
            build(recent, round(args.stories * share), args.recent_days / 365)
        size = big.stat().st_size / 1e6
        times = time_queries(Store(big), args.repeat)
        databases = {"empty": empty, "recent": recent, "big": big}
        cycles: dict[tuple[str, str], list[dict]] = {
            (kind, name): [] for kind in KINDS for name in databases
        }
        first = int(time.time()) % 10**6 * 100  # new run ids and stories in a kept database
        for path in databases.values():
            run_cycle(path, first, "polling")  # the feeds' first bodies, all new: not timed
        for round_ in range(first + 1, first + 1 + args.repeat):
            for kind in KINDS:
                for name, path in databases.items():
                    cycles[kind, name].append(run_cycle(path, round_, kind))
    print(f"\nMedians of {args.repeat} runs, {args.stories:,} stories, database {size:.0f} MB:\n")
    print("| query | seconds | target | |\n|---|---:|---:|---|")
    for name, values in times.items():
        median = statistics.median(values)
        verdict = "met" if median <= TARGETS[name] else "MISSED"
        print(f"| {name} | {median:.2f} | ≤ {TARGETS[name]} | {verdict} |")
    print(
        f"\n| cycle | empty | last {args.recent_days} days only | {args.stories:,} stories "
        "| ratio to empty | ratio to recent | target |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for kind, label in KINDS.items():
        for measure, unit, target in (("seconds", "seconds", "2x"), ("peak_mb", "MB", "1.2x")):
            e, r, b = (
                statistics.median(c[measure] for c in cycles[kind, name]) for name in databases
            )
            print(
                f"| {label}: {unit} | {e:.2f} | {r:.2f} | {b:.2f} | {b / e:.2f}x | {b / r:.2f}x "
                f"| ≤ {target} |"
            )
    for name, values in times.items():
        print(f"all runs, {name}: " + ", ".join(f"{v:.2f}" for v in values))
    for (kind, name), runs in cycles.items():
        print(
            f"all cycles, {kind}, {name}: "
            + ", ".join(f"{c['seconds']:.2f} s {c['peak_mb']:.0f} MB" for c in runs)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
