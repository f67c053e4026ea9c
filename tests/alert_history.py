"""A stored history for alert tests: six-hour windows written by the cycle's own storage
path (Store.store_cycle), one tension headline template among others, every feed polled."""

import hashlib
import shutil
from datetime import UTC, datetime, timedelta

from tensionwatch.config import load_config
from tensionwatch.cycle import CycleBatch, FeedOutcome
from tensionwatch.parse import Story
from tensionwatch.score import compile_topics, score_story
from tensionwatch.store import Store
from tests.conftest import write_config

SIX = timedelta(hours=6)
FEEDS = ("wire", "daily", "evening")
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
START = TODAY - timedelta(days=35)


def tension_title(n):
    return f"Iran warns Israel of missile strikes after drone attack {n}"


def filler_title(n):
    return f"City council approves budget for parks {n}"


class History:
    """Stores six-hour windows as a cycle at the end of each would: a fetch of every feed in
    the window, and its stories, first seen when the window closed."""

    def __init__(self, tmp_path, **overrides):
        feeds = [{"name": f, "url": f"http://127.0.0.1:9/{f}.xml", "outlet": f.title()}
                 for f in FEEDS]  # fmt: skip
        # One writer and no reader between cycles here: the read copy would only cost time.
        overrides = {"storage": {"read_copy": False}, **overrides}
        self.config = load_config(write_config(tmp_path, feeds, **overrides))
        self.store = Store.from_config(self.config)
        self.rules = compile_topics(self.config.topics)
        self.versions = {n: t.rules_version() for n, t in self.config.topics.items()}
        self.serial = 0

    def batch(self, windows, filler=40, feeds=FEEDS, seen=None, polled=True, failed=()):
        """One batch holding [(start, tension stories)] windows: a cycle's worth each."""
        stories, scores, outcomes = [], [], []
        for start, tension in windows:
            seen_at = seen or start + SIX
            for i in range(tension + filler):
                self.serial += 1
                title = tension_title(self.serial) if i < tension else filler_title(self.serial)
                sid = hashlib.sha256(f"story-{self.serial}".encode()).hexdigest()[:16]
                at = start + (i + 1) * SIX / (tension + filler + 1)
                stories.append(Story(sid, feeds[i % len(feeds)], title, "",
                                     f"https://x.test/{sid}", sid, at, seen_at, at, "en"))  # fmt: skip
                scores += [(sid, s) for s in score_story(self.rules, title, "", "en")]
            if polled:
                outcomes += [
                    FeedOutcome(f"{self.serial}-{f}", f, f"http://127.0.0.1:9/{f}.xml",
                                start + SIX / 2, "error" if f in failed else "ok", 10, 1, 100)
                    for f in FEEDS
                ]  # fmt: skip
        seen_at = seen or windows[-1][0] + SIX
        run = f"run-{self.serial}"
        return CycleBatch(run, seen_at, seen_at, self.versions, outcomes, stories, scores)

    def keep(self, windows, **options):
        self.store.store_cycle(self.config, self.batch(windows, **options))

    def quiet(self, first, count):
        """Windows at the usual level: one to three tension stories among 40 others."""
        return [(first + i * SIX, 1 + i % 3) for i in range(count)]


NOW = START + (35 * 4 - 8) * SIX


def copy_of(stored, tmp_path, **overrides):
    """The stored history, in a copy of its own, with a config of its own."""
    h = History(tmp_path, **overrides)
    shutil.copy(stored.config.database_path, h.config.database_path)
    h.serial = stored.serial
    return h
