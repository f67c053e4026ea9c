"""Benchmark of rescoring stored stories (tensionwatch.rescoring.rescore) at 1 million stories.

Set-up (timed for information only): a DuckDB file in a temporary folder with --stories N
(default 1,000,000) news-stream stories, generated as bench/score.py's stream corpus (title
8-14 words, summary 25-45 words, 10% naming every actor group of one topic, 20% one actor,
one in five in Turkish; fixed seed), spread over ~11 months. The schema is the project's
(`Store.migrate`); stories go in with sql/store.sql's insert_stories, one statement per
100,000 stories. No feeds or runs rows: nothing refers to them by foreign key.

What it measures, each rescore in a child process of its own (so its peak memory is its own):

* initial   - `rescore(store, config)` with config.yaml as it is, on a database with no scores:
              scoring every story under new rules from scratch. Once.
* rescore   - config.yaml with one weight changed (signal `missile*` of iran_israel, +1 per
              round, so every round has a new rules version), `rescore(store, config)` over
              all N stories and both topics, keeping the old versions' scores. --repeat rounds
              (default 3); medians. Only iran_israel's version changes, so tr_ru's N rows are
              scored again and left as they are (ON CONFLICT DO NOTHING), as
              `tensionwatch rescore` without --topic does.
* replace   - the same with a further weight change and `replace=True` (old versions of the
              rescored stories deleted). Once.
* peak      - VmHWM of the child (see bench/cycle.py's peak_rss_mb), DuckDB's memory included.
* checks    - after each rescore: N rows per topic under its new version in story_scores, and
              `SELECT DISTINCT rules_version FROM topic_daily WHERE topic = 'iran_israel'`
              gives the new version only.
* baseline  - the naive way: fetch the stories, score each with one regex per term
              (bench/cycle.py's naive_score), write every score row with its own
              `con.execute("INSERT ...", row)` (autocommit). Timed on the first
              --baseline-stories stories (default 20,000) and extrapolated linearly to N.

Target (the issue): rescoring 1 million stored stories in under 2 minutes on this 2-core machine.

Run (from the project root, with the project's venv; about 9 minutes at 1M):

    .venv/bin/python bench/rescore.py [--stories 1000000 --repeat 3 --baseline-stories 20000]
    .venv/bin/python bench/rescore.py --stories 100000 --profile   # cProfile of one rescore

No network is used.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import cycle  # noqa: E402  bench/cycle.py: naive baseline, peak_rss_mb
import duckdb  # noqa: E402
import score as score_bench  # noqa: E402  bench/score.py: the stream story generator
import yaml  # noqa: E402

from tensionwatch.config import Config, load_config, parse_config  # noqa: E402
from tensionwatch.parse import story_id  # noqa: E402
from tensionwatch.rescoring import rescore  # noqa: E402
from tensionwatch.store import Store  # noqa: E402

CONFIG = ROOT / "config.yaml"
TARGET_S = 120.0  # 1 million stories in under 2 minutes
TARGET_STORIES = 1_000_000
CHUNK = 100_000  # stories per INSERT statement while building the database
FEEDS = 500  # stories are spread over this many feeds, one in five Turkish
BUMPED_TOPIC, BUMPED_TERM = "iran_israel", "missile*"
BASE_TIME = datetime(2024, 8, 21, 10, 0, tzinfo=UTC)


# -- set-up: the database ---------------------------------------------------------------------


def story_columns(rng: random.Random, start: int, stop: int) -> dict[str, list]:
    """Columns of insert_stories for stories start..stop-1 (one every 30 s, newest first)."""
    cols: dict[str, list] = {k: [] for k in (
        "story_id", "feed_id", "run_id", "title", "summary", "url", "guid", "published_at",
        "first_seen_at", "event_at", "language")}  # fmt: skip
    for n in range(start, stop):
        feed_no = n % FEEDS
        title, summary, lang = score_bench.make_story(rng, cycle.feed_language(feed_no))
        url = f"https://news{feed_no:04d}.example.com/world/{n}"
        at = BASE_TIME - timedelta(seconds=30 * n)
        # The index is in the identity, so ids stay unique even if two titles come out equal.
        cols["story_id"].append(story_id(f"{url}\n{title}"))
        cols["feed_id"].append(f"feed_{feed_no:04d}")
        cols["run_id"].append("bench-setup")
        cols["title"].append(title)
        cols["summary"].append(summary)
        cols["url"].append(url)
        cols["guid"].append(url)
        cols["published_at"].append(at)
        cols["first_seen_at"].append(at + timedelta(minutes=5))
        cols["event_at"].append(at)
        cols["language"].append(lang)
    return cols


def build_db(path: Path, stories: int, seed: int) -> float:
    """The project's schema and `stories` stories; returns the seconds it took."""
    start = time.perf_counter()
    store = Store(path)
    rng = random.Random(seed)
    with store.connect() as con:
        store.migrate(con)
        for first in range(0, stories, CHUNK):
            cols = story_columns(rng, first, min(first + CHUNK, stories))
            con.execute(store.sql["insert_stories"], cols)
        ((count,),) = con.execute("SELECT count(DISTINCT story_id) FROM stories").fetchall()
    if count != stories:
        raise SystemExit(f"built {count} distinct stories, expected {stories}")
    return time.perf_counter() - start


def db_size_mb(path: Path) -> float:
    wal = path.with_name(path.name + ".wal")
    return (path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 1e6


# -- one rescore (child process) --------------------------------------------------------------


def bumped_config(bump: int) -> Config:
    """config.yaml, with the weight of iran_israel's `missile*` raised by `bump` (0: as is).

    Any change to a topic's rules gives it a new rules_version; a new bump gives a new one.
    """
    if bump == 0:
        return load_config(CONFIG)
    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    signals = raw["topics"][BUMPED_TOPIC]["signals"]
    (signal,) = [s for s in signals if s["term"] == BUMPED_TERM]
    signal["weight"] += bump
    return parse_config(raw, base_dir=ROOT)


def check(store: Store, versions: dict[str, str]) -> dict:
    """Rows per topic under its new version, versions shown by topic_daily, rows per topic."""
    with store.connect(read_only=True) as con:
        ((stories,),) = con.execute("SELECT count(*) FROM stories").fetchall()
        new_rows = {
            topic: con.execute(
                "SELECT count(*) FROM story_scores WHERE topic = ? AND rules_version = ?",
                [topic, version],
            ).fetchall()[0][0]
            for topic, version in versions.items()
        }
        daily = sorted(
            row[0]
            for row in con.execute(
                "SELECT DISTINCT rules_version FROM topic_daily WHERE topic = ?", [BUMPED_TOPIC]
            ).fetchall()
        )
        all_rows = dict(
            con.execute("SELECT topic, count(*) FROM story_scores GROUP BY topic").fetchall()
        )
    return {
        "stories": stories,
        "new_rows": new_rows,
        "topic_daily_versions": daily,
        "all_rows": all_rows,
        "ok": all(n == stories for n in new_rows.values()) and daily == [versions[BUMPED_TOPIC]],
    }


def older_rows(store: Store, config: Config) -> int:
    """Score rows under versions other than the config's: what replace=True deletes."""
    with store.connect(read_only=True) as con:
        return sum(
            con.execute(
                "SELECT count(*) FROM story_scores WHERE topic = ? AND rules_version <> ?",
                [topic, rules.rules_version()],
            ).fetchall()[0][0]
            for topic, rules in config.topics.items()
        )


def child_rescore(db: Path, bump: int, replace: bool, profile: bool) -> None:
    """Child mode: one timed rescore of the whole database; JSON on stdout's last line."""
    store = Store(db)
    config = bumped_config(bump)
    older = older_rows(store, config)  # before the clock starts
    rss_before = cycle.peak_rss_mb()
    start = time.perf_counter()
    if profile:
        profiler = cProfile.Profile()
        result = profiler.runcall(rescore, store, config, replace=replace)
    else:
        result = rescore(store, config, replace=replace)
    seconds = time.perf_counter() - start
    peak = cycle.peak_rss_mb()  # read before the checks: their queries are not the rescore
    if profile:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(20)
        stats.sort_stats("cumulative").print_stats(25)
    print(json.dumps({
        "bump": bump,
        "replace": replace,
        "seconds": seconds,
        "stories": result.stories,
        "versions": result.versions,
        "peak_mb": peak,
        "rss_before_mb": rss_before,
        "older_rows": older,
        "check": check(store, result.versions),
    }))  # fmt: skip


def run_child(db: Path, bump: int, replace: bool = False, profile: bool = False) -> dict:
    command = [sys.executable, __file__, "--child", "--db", str(db), "--bump", str(bump)]
    command += ["--replace"] * replace + ["--profile"] * profile
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    c = result["check"]
    print(f"  {label(result)}: {result['seconds']:.1f} s, {result['stories']:,} stories "
          f"({result['stories'] / result['seconds']:,.0f}/s), peak {result['peak_mb']:.0f} MB, "
          f"{result['older_rows']:,} rows of older versions {'deleted' if replace else 'kept'}; "
          f"new-version rows {c['new_rows']}, topic_daily versions of {BUMPED_TOPIC} "
          f"{c['topic_daily_versions']} -> {'ok' if c['ok'] else 'CHECK FAILED'}; "
          f"score rows per topic now {c['all_rows']}", flush=True)  # fmt: skip
    return result


def label(result: dict) -> str:
    if result["bump"] == 0:
        return "initial (config.yaml as is, no scores yet)"
    kind = "replace=True" if result["replace"] else "keep old versions"
    return f"rescore, missile* weight +{result['bump']} ({kind})"


# -- the naive baseline -----------------------------------------------------------------------


def naive_baseline(db: Path, sample: int, total: int) -> dict:
    """Fetch, regex-score and row-by-row insert `sample` stories; scaled linearly to `total`."""
    topics = cycle.default_topics()
    rules = cycle.naive_rules(topics)
    groups = {name: len(topic["actors"]) for name, topic in topics.items()}
    con = duckdb.connect(str(db))
    try:
        start = time.perf_counter()
        rows = con.execute(
            "SELECT story_id, title, summary, language FROM stories ORDER BY story_id LIMIT ?",
            [sample],
        ).fetchall()
        t_fetch = time.perf_counter() - start

        start = time.perf_counter()
        now = datetime.now(UTC)
        scores = []
        for sid, title, summary, _language in rows:
            for topic, (score, relevant, hit) in cycle.naive_score(
                rules, groups, f"{title} {summary}"
            ).items():
                scores.append((sid, topic, "naive", score, relevant, json.dumps(hit), now))
        t_score = time.perf_counter() - start

        # One statement per row, each its own transaction: what a first version would do.
        start = time.perf_counter()
        for row in scores:
            con.execute(
                "INSERT INTO story_scores (story_id, topic, rules_version, score, relevant, "
                "matches, scored_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        t_insert = time.perf_counter() - start
    finally:
        con.close()
    scale = total / len(rows)
    return {
        "sample": len(rows),
        "rows": len(scores),
        "sample_s": {"fetch": t_fetch, "score": t_score, "insert": t_insert},
        "fetch": t_fetch * scale,
        "score": t_score * scale,
        "insert": t_insert * scale,
        "total": (t_fetch + t_score + t_insert) * scale,
    }


# -- report -----------------------------------------------------------------------------------


def report(args: argparse.Namespace, initial: dict, rounds: list[dict], replaced: dict,
           naive: dict) -> bool:  # fmt: skip
    n = args.stories
    seconds = statistics.median(r["seconds"] for r in rounds)
    peak = statistics.median(r["peak_mb"] for r in rounds)
    target = TARGET_S * n / TARGET_STORIES  # the 2-minute target, scaled if N is not 1M
    verdict = "met" if seconds <= target else "MISSED"

    def row(name: str, s: float, peak_mb: float | None, note: str = "") -> None:
        mem = f"{peak_mb:,.0f} MB" if peak_mb is not None else ""
        print(f"| {name} | {s:,.1f} s | {n / s:,.0f} | {mem} | {note} |")

    print(f"\n{n:,} stories, both topics (2 score rows per story):\n")
    print("| measure | seconds | stories/s | peak (VmHWM) | |")
    print("|---|---:|---:|---:|---|")
    row("initial: default rules, no scores yet (1 run)", initial["seconds"], initial["peak_mb"])
    row(f"rescore, keep old versions (median of {len(rounds)})", seconds, peak,
        f"target < {target:.0f} s: {verdict}")  # fmt: skip
    row("rescore, replace=True (1 run)", replaced["seconds"], replaced["peak_mb"],
        f"target < {target:.0f} s: {'met' if replaced['seconds'] <= target else 'MISSED'}; "
        f"deleted {replaced['older_rows']:,} rows of {len(rounds) + 1} older versions")  # fmt: skip
    row(f"naive baseline, extrapolated from {naive['sample']:,} stories", naive["total"], None,
        f"{naive['total'] / seconds:.0f}x our rescore")  # fmt: skip
    row("  naive: fetch", naive["fetch"], None)
    row("  naive: one regex per term per story", naive["score"], None)
    row("  naive: one INSERT per score row (autocommit)", naive["insert"], None)
    print(f"\nNOTE: the baseline was run on the first {naive['sample']:,} stories (by story_id) "
          f"and their {naive['rows']:,} score rows, in "
          f"{sum(naive['sample_s'].values()):.1f} s, and scaled linearly to {n:,} stories.")  # fmt: skip
    print(
        "all runs, rescore (keep): "
        + ", ".join(f"{r['seconds']:.1f} s / {r['peak_mb']:.0f} MB" for r in rounds)
    )
    print(
        f"peak before rescore() (imports, config, one count query): "
        f"{statistics.median(r['rss_before_mb'] for r in rounds):.0f} MB"
    )
    runs = [initial, *rounds, replaced]
    ok = all(r["check"]["ok"] for r in runs)
    print(f"checks: {'all passed' if ok else 'FAILED'} ({n:,} rows per topic under each new "
          f"version; topic_daily shows only the new {BUMPED_TOPIC} version); after replace, "
          f"score rows per topic: {replaced['check']['all_rows']}")  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stories", type=int, default=TARGET_STORIES)
    parser.add_argument("--repeat", type=int, default=3, help="timed rescores (keep old versions)")
    parser.add_argument("--seed", type=int, default=20240821)
    parser.add_argument("--baseline-stories", type=int, default=20_000,
                        help="stories the naive baseline is timed on, then extrapolated")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="after the initial rescore, cProfile one more, then stop")  # fmt: skip
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--bump", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--replace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        child_rescore(args.db, args.bump, args.replace, args.profile)
        return 0

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tw-bench-rescore-") as tmp:
        db = Path(tmp) / "tw.duckdb"
        print(f"python {sys.version.split()[0]}, duckdb {duckdb.__version__}, {os.cpu_count()} "
              f"CPUs (shared); {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)  # fmt: skip
        setup_s = build_db(db, args.stories, args.seed)
        print(f"set-up (not measured): {args.stories:,} stories in {setup_s:.1f} s, "
              f"{db_size_mb(db):,.0f} MB (seed {args.seed})", flush=True)  # fmt: skip
        initial = run_child(db, 0)
        if args.profile:  # a rescore that keeps old versions, as the timed rounds do
            run_child(db, 1, profile=True)
            return 0
        rounds = [run_child(db, bump) for bump in range(1, args.repeat + 1)]
        replaced = run_child(db, args.repeat + 1, replace=True)
        naive = naive_baseline(db, args.baseline_stories, args.stories)
        print(f"  naive baseline on {naive['sample']:,} stories: " + ", ".join(
            f"{k} {v:.1f} s" for k, v in naive["sample_s"].items()), flush=True)  # fmt: skip
        print(f"database at the end: {db_size_mb(db):,.0f} MB", flush=True)
        ok = report(args, initial, rounds, replaced, naive)
    print(f"whole script: {time.perf_counter() - began:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
