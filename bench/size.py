"""How big the database gets, and what pruning and compaction give back, at 1 million stories.

Builds, in a temporary folder (or --keep DIR), a database with the project's schema
(`Store.migrate`) holding --stories stories (default 1,000,000) at the real corpus's volume, as
a schedule would have stored them, written by DuckDB from generate_series in minutes:

- 334 feeds (the corpus's), polled every 15 minutes (schedule.interval_minutes): one `fetches`
  row per feed per cycle (40% answer 304, 30% the same body, 27% a new one, 3% fail; ids are
  UUIDs as cycle.py makes them) and one `runs` row per cycle;
- 2,385 new stories a day (the corpus: 431,654 entries in 181 days), so 1M stories span 419
  days. Headlines and summaries are words drawn from the real corpus
  (/work/shared/realdata/corpus-2023h1, read at run time, never copied into the project),
  with the word counts of a random real headline and description each: text that compresses
  as prose does, at real lengths (the corpus cuts descriptions at 500 characters: 12.6% of
  them are cut, so real feeds that carry whole articles store more). Links and guids as
  outlets make them;
- per story and topic a score whose `matches` is what the real rules give a real story: 11%
  of stories (the corpus's share of all entries that name a country or actor of the topics)
  take the score of a random corpus story, the others that of a random text of pool words;
- every story in `story_events` (one in ten joining the story before it), with headline words;
- the trend tables, rebuilt from all of that (`Store.rebuild_trend_tables`).

Then, --repeat times (medians), each on a fresh copy of that file and each step in a child
process of its own (time and VmHWM):

- copy       - `Store.publish_read_copy`: copying the file once, the yardstick (a cycle does
               this when storage.read_copy is on);
- dry run    - `prune(..., dry_run=True)`: counting through a read-only connection;
- prune      - `prune(...)` with --text-days / --fetch-days (config.yaml's defaults);
- compact    - `prune(..., compact=True)` on the pruned file: the rewrite into a new file
               and the swap (the prune before it removes nothing more).

Once more, on a copy pruned but not compacted and on the unpruned one: 30 more days of stories
and fetches are appended to each, to see how much of them the freed blocks take in.

    .venv/bin/python bench/size.py [--stories 1000000 --repeat 3 --text-days D --fetch-days D]

No network is used.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import yaml  # noqa: E402

from tensionwatch.config import Config, RetentionSettings, parse_config  # noqa: E402
from tensionwatch.retention import database_bytes, prune  # noqa: E402
from tensionwatch.score import compile_topics, score_story  # noqa: E402
from tensionwatch.store import Store  # noqa: E402

CORPUS = Path("/work/shared/realdata/corpus-2023h1")
FEEDS = 334
PER_DAY = 431_654 / 181
INTERVAL_MINUTES = 15
POOL_WORDS = 300_000  # words drawn from the corpus (by frequency): the vocabulary of the text
SAMPLES = 4_000  # real headline/description lengths, and scored texts of each kind
CHUNK = 100_000  # stories per statement while building
APPENDED_DAYS = 30

# The columns a cycle writes, from the spine (n, f, ts, seen) and the drawn words.
STORIES = """
INSERT INTO stories
WITH words AS (
    SELECT s.n, unnest(range(l.title_words)) AS pos, 't' AS part FROM spine AS s
    JOIN lengths AS l ON l.i = hash(s.n, 'l') % $lengths WHERE s.n >= $a AND s.n < $b
    UNION ALL
    SELECT s.n, unnest(range(l.summary_words)), 's' FROM spine AS s
    JOIN lengths AS l ON l.i = hash(s.n, 'l') % $lengths WHERE s.n >= $a AND s.n < $b
),
texts AS (
    SELECT n, string_agg(p.word, ' ' ORDER BY pos) FILTER (WHERE part = 't') AS title,
           string_agg(p.word, ' ' ORDER BY pos) FILTER (WHERE part = 's') AS summary
    FROM words JOIN pool AS p ON p.i = hash(n, pos, part) % $pool
    GROUP BY n
)
SELECT story_key(s.n), 'outlet' || s.f || '_world',
       CAST(CAST(md5('run' || CAST(epoch(s.seen - $start) // ($interval * 60) AS BIGINT))
                 AS UUID) AS VARCHAR),
       t.title, coalesce(t.summary, ''),
       'https://www.outlet' || s.f || '.com/news/' || strftime(s.ts, '%Y/%m/%d') || '/'
           || lower(regexp_replace(array_to_string(string_split(t.title, ' ')[1:6], '-'),
                                   '[^A-Za-z0-9-]', '', 'g')) || '-' || s.n,
       CASE WHEN s.f % 2 = 0 THEN NULL ELSE 'https://www.outlet' || s.f || '.com/?p=' || s.n END,
       s.ts, s.seen, s.ts, 'en'
FROM spine AS s JOIN texts AS t USING (n)
WHERE s.n >= $a AND s.n < $b
ORDER BY s.n
"""

SCORES = """
INSERT INTO story_scores
SELECT story_key(s.n), m.topic, m.rules_version, m.score, m.relevant, m.matches, s.seen,
       m.scored, m.threat, m.act, s.ts
FROM spine AS s
JOIN match_pool AS m
  ON m.kind = CASE WHEN hash(s.n, 'k') % 100 < 11 THEN 'corpus' ELSE 'stream' END
 AND m.i = hash(s.n, 'm') % $samples
WHERE s.n >= $a AND s.n < $b
ORDER BY s.n, m.topic
"""

EVENTS = """
INSERT INTO story_events
SELECT story_key(s.n), story_key(CASE WHEN s.n % 10 = 1 THEN s.n - 1 ELSE s.n END),
       CASE WHEN s.n % 10 = 1 THEN 0.6 END, s.seen, s.ts,
       CASE WHEN s.n % 10 = 1 THEN s.ts - to_seconds(CAST($spacing AS BIGINT)) ELSE s.ts END,
       list_sort(list_distinct(list_filter(string_split(lower(st.title), ' '),
                                           lambda w: length(w) > 3)))
FROM spine AS s JOIN stories AS st ON st.story_id = story_key(s.n)
WHERE s.n >= $a AND s.n < $b
ORDER BY s.n
"""

FETCHES = """
INSERT INTO fetches
WITH polls AS (
    SELECT c, f, $start + to_seconds(CAST(c * $interval * 60 + f * 0.05 AS BIGINT)) AS polled_at,
           hash(c, f) % 100 AS roll
    FROM range($a, $b) AS x(c), range($feeds) AS y(f)
)
SELECT CAST(gen_random_uuid() AS VARCHAR), CAST(CAST(md5('run' || c) AS UUID) AS VARCHAR),
       'outlet' || f || '_world', 'https://feeds.outlet' || f || '.com/rss/world.xml',
       'https://feeds.outlet' || f || '.com/rss/world.xml', polled_at,
       CAST(40 + hash(c, f, 'd') % 1500 AS INTEGER), CASE WHEN roll = 99 THEN 2 ELSE 1 END,
       CASE WHEN roll < 40 THEN 'not_modified' WHEN roll < 70 THEN 'unchanged'
            WHEN roll < 97 THEN 'ok' ELSE 'error' END,
       CASE WHEN roll < 40 THEN 304 WHEN roll < 97 THEN 200 WHEN roll = 97 THEN 404
            WHEN roll = 98 THEN 503 END,
       CASE WHEN roll < 40 OR roll >= 97 THEN 0 ELSE 20000 + hash(c, f, 'b') % 180000 END,
       CASE WHEN roll >= 70 AND roll < 97 THEN 20 + hash(c, f, 'e') % 40 ELSE 0 END,
       CASE WHEN roll >= 70 AND roll < 97 THEN CAST(hash(c, f, 'n') % 3 AS INTEGER) ELSE 0 END,
       CASE roll WHEN 97 THEN 'HTTP 404 Not Found' WHEN 98 THEN 'HTTP 503 Service Unavailable'
                 WHEN 99 THEN 'timed out after 10 s (fetch.timeout_seconds)' END,
       CASE WHEN roll = 96 THEN 'entries recovered from a malformed feed' END
FROM polls
ORDER BY c, f
"""

RUNS = """
INSERT INTO runs
SELECT CAST(CAST(md5('run' || c) AS UUID) AS VARCHAR), polled_at, polled_at + INTERVAL 20 SECOND,
       polled_at + INTERVAL 21 SECOND, $feeds, CAST($feeds * 0.27 AS INTEGER),
       CAST($feeds * 0.70 AS INTEGER), CAST($feeds * 0.03 AS INTEGER), $feeds * 11,
       CAST($per_cycle AS INTEGER), $versions
FROM (SELECT c, $start + to_seconds(CAST(c * $interval * 60 AS BIGINT)) AS polled_at
      FROM range($a, $b) AS x(c))
"""


def corpus_samples(rng: random.Random) -> tuple[list[str], list[tuple[int, int]], list[tuple]]:
    """Words by frequency, (headline words, description words) pairs, and real stories."""
    entries = []
    with gzip.open(CORPUS / "news.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            entry = json.loads(line)
            entries.append((entry["title"], entry.get("description") or ""))
    words = [w for title, text in entries for w in (title + " " + text).split()]
    pool = rng.sample(words, min(POOL_WORDS, len(words)))
    picked = rng.sample(entries, SAMPLES)
    lengths = [(len(title.split()), len(text.split())) for title, text in picked]
    return pool, lengths, picked


def match_pool(config: Config, pool: list[str], real: list[tuple], rng: random.Random) -> list:
    """Rows (kind, i, topic, version, score, relevant, matches, scored, threat, act)."""
    rules = compile_topics(config.topics)
    rows = []
    stream = [
        (" ".join(rng.choices(pool, k=rng.randint(6, 14))),
         " ".join(rng.choices(pool, k=rng.randint(0, 60))))
        for _ in range(SAMPLES)
    ]  # fmt: skip
    for kind, texts in (("corpus", real), ("stream", stream)):
        for i, (title, text) in enumerate(texts):
            for sc in score_story(rules, title, text, "en"):
                points = {
                    k: sum(s["points"] for s in sc.matches.get("signals", ())
                           if sc.relevant and s.get("role") == "signal" and s.get("class") == k)
                    for k in ("threat", "act")
                }  # fmt: skip
                rows.append((kind, i, sc.topic, sc.rules_version, sc.score, sc.relevant,
                             json.dumps(sc.matches, ensure_ascii=False), sc.scored,
                             points["threat"], points["act"]))  # fmt: skip
    return rows


def bench_config(text_days: int | None, fetch_days: int | None) -> Config:
    raw = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    raw["retention"] = {"story_text_days": text_days, "fetch_log_days": fetch_days}
    return parse_config(raw, base_dir=ROOT)


def fill(con, sql: str, **values) -> None:
    """Run a build statement with its $names as literals (numbers and times we made here)."""
    for name, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
        if isinstance(value, datetime):
            value = f"TIMESTAMPTZ '{value.isoformat()}'"
        sql = sql.replace(f"${name}", str(value))
    con.execute(sql)


def build(path: Path, stories: int, config: Config, end: datetime, rng: random.Random) -> dict:
    """The database; returns what the appending step needs to continue it."""
    pool, lengths, real = corpus_samples(rng)
    spacing = 86400.0 / PER_DAY
    start = end - timedelta(seconds=stories * spacing)
    store = Store(path)
    with store.connect() as con:
        store.migrate(con)
        store.record_rule_versions(con, config)
        prepare(con, pool, lengths, match_pool(config, pool, real, rng))
        con.execute(
            "INSERT INTO feeds (feed_id, url, language, added_at, outlet, last_ok_at, "
            "consecutive_failures) SELECT 'outlet' || f || '_world', "
            "'https://feeds.outlet' || f || '.com/rss/world.xml', 'en', ?, 'outlet' || f, ?, 0 "
            "FROM range(?) AS t(f)",
            [start, end, FEEDS],
        )
        append(con, 0, stories, start, spacing, config)
        store.rebuild_trend_tables(con)
        con.execute("CHECKPOINT")
    return {"start": start, "spacing": spacing}


def prepare(con, pool: list[str], lengths: list[tuple[int, int]], matches: list) -> None:
    """The session's helpers: story ids as parse.py makes them (16 hex digits of a hash, in
    no order), the word pool, the real lengths and the scores to draw from."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TEMP MACRO story_key(n) AS substr(md5(CAST(n AS VARCHAR)), 1, 16)")
    con.execute("CREATE TEMP TABLE pool AS SELECT unnest($w) AS word, "
                "CAST(generate_subscripts($w, 1) - 1 AS UBIGINT) AS i", {"w": pool})  # fmt: skip
    con.execute(
        "CREATE TEMP TABLE lengths AS SELECT CAST(i AS UBIGINT) AS i, t AS title_words, "
        "s AS summary_words FROM (SELECT unnest(range(len($t))) AS i, unnest($t) AS t, "
        "unnest($s) AS s)",
        {"t": [max(1, t) for t, _ in lengths], "s": [s for _, s in lengths]},
    )
    con.execute(
        "CREATE TEMP TABLE match_pool (kind VARCHAR, i UBIGINT, topic VARCHAR, "
        "rules_version VARCHAR, score DOUBLE, relevant BOOLEAN, matches JSON, "
        "scored BOOLEAN, threat DOUBLE, act DOUBLE)"
    )
    con.executemany("INSERT INTO match_pool VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", matches)


def append(con, first: int, last: int, start: datetime, spacing: float, config: Config) -> None:
    """Stories first..last-1 and the cycles over their time, at the corpus's volume."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE spine AS SELECT n, n % ? AS f, ts, "
        "ts + to_seconds(CAST(hash(n, 'seen') % 1800 AS BIGINT)) AS seen FROM ("
        "SELECT n, CAST(? AS TIMESTAMPTZ) + to_seconds(CAST(n * ? AS BIGINT)) AS ts "
        "FROM range(?, ?) AS t(n))",
        [FEEDS, start, spacing, first, last],
    )
    ((lengths,),) = con.execute("SELECT count(*) FROM lengths").fetchall()
    ((pool,),) = con.execute("SELECT count(*) FROM pool").fetchall()
    for a in range(first, last, CHUNK):
        b = min(a + CHUNK, last)
        values = {"a": a, "b": b, "pool": pool, "lengths": lengths, "samples": SAMPLES,
                  "spacing": spacing, "start": start, "interval": INTERVAL_MINUTES}  # fmt: skip
        for sql in (STORIES, SCORES, EVENTS):
            fill(con, sql, **values)
    cycle_seconds = INTERVAL_MINUTES * 60
    first_cycle = int(first * spacing // cycle_seconds)
    last_cycle = int(last * spacing // cycle_seconds)
    versions = "'" + json.dumps({n: t.rules_version() for n, t in config.topics.items()}) + "'"
    for a in range(first_cycle, last_cycle, 1000):
        b = min(a + 1000, last_cycle)
        common = {"a": a, "b": b, "start": start, "interval": INTERVAL_MINUTES, "feeds": FEEDS}
        fill(con, FETCHES, **common)
        fill(con, RUNS, **common, per_cycle=PER_DAY / 96, versions=versions)


def table_sizes(path: Path, folder: Path) -> dict[str, float]:
    """MB each table takes on its own (and the columns a prune empties): copied into a file of
    its own, less what a file holding one empty table takes. The rest of the database is
    mostly the primary keys' indexes, which a copy does not carry."""
    import duckdb

    parts = {}
    with duckdb.connect(str(path)) as con:  # writes nothing to it; attaches a file to write
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        selections = {"(an empty table)": "SELECT 1 AS x WHERE false"}
        selections |= {name: f"SELECT * FROM {name}" for name in names}
        selections["stories.summary"] = "SELECT summary FROM stories"
        selections["story_events.title_words"] = "SELECT title_words FROM story_events"
        for label, select in selections.items():
            target = folder / "part.duckdb"
            target.unlink(missing_ok=True)
            con.execute("ATTACH ? AS part", [str(target)])
            con.execute(f"CREATE TABLE part.t AS {select}")
            con.execute("DETACH part")
            parts[label] = target.stat().st_size / 1e6
            target.unlink()
    empty = parts.pop("(an empty table)")
    sizes = {label: size - empty for label, size in parts.items()}
    whole = sum(size for label, size in sizes.items() if "." not in label)
    sizes["the rest: indexes (primary keys), catalog, free blocks"] = (
        database_bytes(path) / 1e6 - whole
    )
    return sizes


def child(step: str, db: str, text_days: str, fetch_days: str, now: str) -> None:
    """One step on one file; prints seconds and VmHWM (MB) as JSON."""
    config = bench_config(*(None if d == "none" else int(d) for d in (text_days, fetch_days)))
    store = Store(Path(db), lock_timeout=0)
    began = time.monotonic()
    result: dict = {}
    if step == "copy":
        Store(Path(db), read_copy=True).publish_read_copy([])
    else:
        report = prune(store, config, datetime.fromisoformat(now), dry_run=step == "dry run",
                       compact=step == "compact")  # fmt: skip
        result = {"summaries": report.summaries, "title_words": report.title_words,
                  "fetches": report.fetches, "notes": report.notes}  # fmt: skip
    result["seconds"] = time.monotonic() - began
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            result["peak_mb"] = int(line.split()[1]) / 1024
    result["bytes"] = database_bytes(Path(db))
    print(json.dumps(result))


def run_child(step: str, db: Path, args: argparse.Namespace, now: datetime) -> dict:
    days = [str(d) if d is not None else "none" for d in (args.text_days, args.fetch_days)]
    out = subprocess.run(
        [sys.executable, __file__, "--child", step, str(db), *days, now.isoformat()],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    defaults = RetentionSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stories", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--text-days", type=int, default=defaults.story_text_days)
    parser.add_argument("--fetch-days", type=int, default=defaults.fetch_log_days)
    parser.add_argument("--keep", help="build the database in this folder once, and reuse it")
    parser.add_argument("--seed", type=int, default=20230101)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    config = bench_config(args.text_days, args.fetch_days)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        built = folder / "built.duckdb"
        meta = folder / "built.json"
        if not (args.keep and built.exists() and meta.exists()):
            began = time.monotonic()
            end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            shape = build(built, args.stories, config, end, random.Random(args.seed))
            json_shape = {"end": end.isoformat(), "start": shape["start"].isoformat(),
                          "spacing": shape["spacing"]}  # fmt: skip
            meta.write_text(json.dumps(json_shape))
            print(f"built {args.stories:,} stories in {time.monotonic() - began:.0f} s", flush=True)
        shape = json.loads(meta.read_text())
        end = datetime.fromisoformat(shape["end"])
        now = end  # the prune runs as the history ends
        built_bytes = database_bytes(built)
        parts = table_sizes(built, folder)
        runs: dict[str, list[dict]] = {s: [] for s in ("copy", "dry run", "prune", "compact")}
        for round_ in range(args.repeat):
            work = folder / "work.duckdb"
            shutil.copyfile(built, work)
            for step in runs:
                runs[step].append(run_child(step, work, args, now))
            print("  round", round_ + 1,
                  {s: round(r[-1]["seconds"], 1) for s, r in runs.items()}, flush=True)  # fmt: skip
            (folder / "work.read.duckdb").unlink(missing_ok=True)
        growth = steady_state(built, folder, args, config, shape, now)
    report(args, built_bytes, parts, runs, growth, shape)
    return 0


def steady_state(built: Path, folder: Path, args, config: Config, shape: dict, now) -> dict:
    """File growth when 30 more days are appended to the unpruned and to the pruned file."""
    import duckdb

    rng = random.Random(args.seed)  # the build's draws again: its temp tables went with it
    pool, lengths, real = corpus_samples(rng)
    matches = match_pool(config, pool, real, rng)
    first, last = args.stories, args.stories + int(APPENDED_DAYS * PER_DAY)
    result = {}
    for name in ("unpruned", "pruned"):
        path = folder / f"{name}.duckdb"
        shutil.copyfile(built, path)
        if name == "pruned":
            prune(Store(path), config, now)
        before = database_bytes(path)
        with duckdb.connect(str(path)) as con:
            prepare(con, pool, lengths, matches)
            append(con, first, last, datetime.fromisoformat(shape["start"]), shape["spacing"],
                   config)  # fmt: skip
            con.execute("CHECKPOINT")
        result[name] = (before, database_bytes(path))
        path.unlink()
    return result


def report(args, built_bytes, parts, runs, growth, shape) -> None:
    mb = 1e6
    days = (datetime.fromisoformat(shape["end"]) - datetime.fromisoformat(shape["start"])).days
    median = {s: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "peak_mb", "bytes")}
              for s, rs in runs.items()}  # fmt: skip
    removed = runs["prune"][0]
    print(f"\n{args.stories:,} stories over {days} days, {FEEDS} feeds polled every "
          f"{INTERVAL_MINUTES} min; retention: text {args.text_days} days, fetch logs "
          f"{args.fetch_days} days. Medians of {args.repeat} runs.\n")  # fmt: skip
    print(f"Database after building: {built_bytes / mb:,.0f} MB. Each table on its own:\n")
    print("| table | MB | share |\n|---|---:|---:|")
    for name, size in sorted(parts.items(), key=lambda kv: -kv[1]):
        if size >= 0.05:  # the small tables (alerts, settings, …) take a block or two each
            print(f"| {name} | {size:,.1f} | {size * mb / built_bytes:.0%} |")
    print(f"\nRemoved by the prune: {removed['summaries']:,} summaries, "
          f"{removed['title_words']:,} headline-word lists, {removed['fetches']:,} fetch rows\n")  # fmt: skip
    print("| step | seconds | peak MB | file MB after | file / built | seconds / copy |")
    print("|---|---:|---:|---:|---:|---:|")
    for step, m in median.items():
        print(f"| {step} | {m['seconds']:.1f} | {m['peak_mb']:.0f} | {m['bytes'] / mb:,.0f} | "
              f"{m['bytes'] / built_bytes:.2f} | {m['seconds'] / median['copy']['seconds']:.1f}x |")  # fmt: skip
    print(f"\n{APPENDED_DAYS} more days appended ({int(APPENDED_DAYS * PER_DAY):,} stories, "
          f"{APPENDED_DAYS * 96 * FEEDS:,} fetches):\n")  # fmt: skip
    print("| file | MB before | MB after | grew MB |\n|---|---:|---:|---:|")
    for name, (before, after) in growth.items():
        print(f"| {name} | {before / mb:,.0f} | {after / mb:,.0f} | {(after - before) / mb:,.0f} |")
    u, p = growth["unpruned"], growth["pruned"]
    print(f"\npruned growth / unpruned growth: {(p[1] - p[0]) / max(1, u[1] - u[0]):.2f}")
    for step, rs in runs.items():
        print(f"all runs, {step}: " + ", ".join(
            f"{r['seconds']:.1f} s {r['peak_mb']:.0f} MB {r['bytes'] / mb:,.0f} MB" for r in rs))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
