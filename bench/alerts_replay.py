"""Replay 90 days of synthetic news with a weekly rhythm through storage and the detector.

Builds, in a temporary folder, 90 days of six-hour windows stored by the cycle's own storage
path (`Store.store_cycle`, one batch a day): 12 feeds of 8 outlets, all polled every window;
about 400 stories per window on weekdays and 250 at weekends, a quarter of that at night
(00–06 UTC). Each story is an Iran–Israel tension headline with probability 1% (Poisson noise),
else a headline of something else, scored by the shipped rules. Three spikes are injected:
- small: day 40, 12–18 UTC, 3 extra tension stories (the noise of a busy window: no alert due);
- medium: day 55, 06–12 UTC, 16 extra tension stories from several outlets;
- large: days 70–71, every window, 25 extra tension stories (a crisis that lasts two days).
Then every window is judged as if it had just closed (`alerting.read_windows` + `detect.replay`,
the shipped alert settings), and it prints each alert, the verdict of each injected spike, and
the false alarms per month (alerts outside the injected spikes).

    .venv/bin/python bench/alerts_replay.py [--days 90 --seed 7]

No network is used.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tensionwatch.alerting import read_windows  # noqa: E402
from tensionwatch.config import load_config  # noqa: E402
from tensionwatch.cycle import CycleBatch, FeedOutcome  # noqa: E402
from tensionwatch.detect import replay  # noqa: E402
from tensionwatch.parse import Story  # noqa: E402
from tensionwatch.score import compile_topics, score_story  # noqa: E402
from tensionwatch.store import Store  # noqa: E402

SIX = timedelta(hours=6)
FEEDS = [(f"feed{i}", f"Outlet {i % 8}") for i in range(12)]
TENSION = [
    "Iran warns Israel of missile strikes after drone attack near base {n}",
    "Israel strikes Iranian air defence site in overnight raid {n}",
    "Iranian drones target Israeli vessel as tensions rise {n}",
    "Israel vows retaliation after Iran fires missiles at Golan {n}",
]
OTHER = [
    "City council approves budget for new parks {n}",
    "Central bank holds interest rates steady for quarter {n}",
    "Football club signs striker on four-year deal {n}",
    "Storm brings heavy rain and flooding to coastal towns {n}",
    "Tech firm unveils new phone with longer battery life {n}",
]
SPIKES = {  # name: (day, window index 0–3 or None for every window, days, extra stories)
    "small": (40, 2, 1, 3),
    "medium": (55, 1, 1, 16),
    "large": (70, None, 2, 25),
}


def poisson(rng: random.Random, mean: float) -> int:
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def extra_at(day: int, window: int) -> tuple[str | None, int]:
    for name, (first, only, days, extra) in SPIKES.items():
        if first <= day < first + days and (only is None or only == window):
            return name, extra
    return None, 0


def build(db_dir: Path, days: int, seed: int, start: datetime):
    config_path = db_dir / "config.yaml"
    feeds = "\n".join(
        f"  - {{name: {name}, url: 'http://127.0.0.1:9/{name}.xml', outlet: '{outlet}'}}"
        for name, outlet in FEEDS
    )
    shipped = (ROOT / "config.yaml").read_text(encoding="utf-8")
    topics = shipped[shipped.index("\ntopics:") :]
    config_path.write_text(
        f"storage: {{path: '{db_dir / 'tw.duckdb'}', read_copy: false}}\nfeeds:\n{feeds}{topics}",
        encoding="utf-8",
    )
    config = load_config(config_path)
    store = Store.from_config(config)
    rules = compile_topics(config.topics)
    versions = {name: t.rules_version() for name, t in config.topics.items()}
    rng = random.Random(seed)
    serial = 0
    for day in range(days):
        stories, scores, outcomes = [], [], []
        for w in range(4):
            begin = start + timedelta(days=day) + w * SIX
            weekend = begin.weekday() >= 5
            volume = (250 if weekend else 400) * (0.25 if w == 0 else 1.0)
            total = poisson(rng, volume)
            tension = poisson(rng, total * 0.01)
            _, extra = extra_at(day, w)
            for i in range(total + extra):
                serial += 1
                is_tension = i < tension + extra
                template = rng.choice(TENSION if is_tension else OTHER)
                title = template.format(n=serial)
                sid = hashlib.sha256(f"replay-{serial}".encode()).hexdigest()[:16]
                at = begin + timedelta(seconds=rng.uniform(0, SIX.total_seconds()))
                feed = FEEDS[rng.randrange(len(FEEDS))][0]
                stories.append(Story(sid, feed, title, "", f"https://news.test/{sid}", sid, at,
                                     begin + SIX, at, "en"))  # fmt: skip
                scores += [(sid, s) for s in score_story(rules, title, "", "en")]
            outcomes += [
                FeedOutcome(f"f{serial}-{name}", name, f"http://127.0.0.1:9/{name}.xml",
                            begin + SIX / 2, "ok", 100, 1, 1000)
                for name, _ in FEEDS
            ]  # fmt: skip
        at = start + timedelta(days=day + 1)
        store.store_cycle(config, CycleBatch(f"day-{day}", at, at, versions, outcomes,
                                             stories, scores))  # fmt: skip
    return config, store, serial


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=args.days)
    with tempfile.TemporaryDirectory() as tmp:
        began = time.monotonic()
        config, store, stories = build(Path(tmp), args.days, args.seed, start)
        built = time.monotonic() - began
        settings = config.alerts
        with store.reading() as con:
            windows = read_windows(con, settings, start, today)
        decisions = replay(windows, settings)
    print(f"{stories:,} stories over {args.days} days stored in {built:.0f} s; "
          f"{len(windows)} windows judged; settings: {settings.model_dump()}\n")  # fmt: skip
    print("| alert | topic | window (UTC) | hours | severity | z | value | baseline median | why |")
    print("|---|---|---|---:|---|---:|---:|---:|---|")
    false_alarms = 0
    for d in decisions:
        if not d.alert:
            continue
        v, w = d.verdict, d.verdict.window
        day = (w.start - start).days
        name, _ = extra_at(day, (w.start.hour // 6) if w.hours == 6 else None)
        if name is None and w.hours == 24:
            name = next((n for n, (first, _, days, _) in SPIKES.items()
                         if first <= day < first + days), None)  # fmt: skip
        false_alarms += name is None
        print(f"| {name or 'FALSE ALARM'} | {w.topic} | {w.start:%Y-%m-%d %H:%M} (day {day}) | "
              f"{w.hours:g} | {v.severity} | {v.z:.1f} | {v.value:.4f} | {v.median:.4f} | "
              f"{d.why} |")  # fmt: skip
    print("\nInjected spikes, first window of each:")
    for name, (first, only, _, extra) in SPIKES.items():
        begin = start + timedelta(days=first) + (only or 0) * SIX
        (d,) = [d for d in decisions
                if d.verdict.window.start == begin and d.verdict.window.hours == 6
                and d.verdict.window.topic == "iran_israel"]  # fmt: skip
        v = d.verdict
        z = "—" if v.z is None else f"{v.z:.1f}"
        print(f"- {name} (+{extra} stories): z {z}, {v.reason}; alert: {d.alert} ({d.why})")
    months = args.days / 30.44
    print(f"\nFalse alarms: {false_alarms} in {args.days} days = {false_alarms / months:.2f} "
          f"per month at threshold {settings.threshold}")  # fmt: skip
    quiet_alerts = sum(d.alert for d in decisions) - false_alarms
    print(f"Alerts on injected spikes: {quiet_alerts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
