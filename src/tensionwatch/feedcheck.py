"""`tensionwatch feeds check`: ask every configured feed once, now, and read what it sends, to
validate a new config. Each feed is asked at its configured address, whole (no validators),
whatever its due time, and parsed the way a cycle parses (cycle.parse_bodies, in worker
processes); nothing is written anywhere. One FeedCheck per feed, problems as values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tensionwatch.config import Config
from tensionwatch.cycle import parse_bodies
from tensionwatch.fetch import FAILED, fetch_feeds
from tensionwatch.workers import FeedWorkers


@dataclass(frozen=True, slots=True)
class FeedCheck:
    feed_id: str
    url: str  # as configured, secrets hidden
    status_code: int | None
    content_type: str | None
    entries: int
    newest_at: datetime | None  # the newest published time among its entries
    error: str | None = None
    note: str | None = None  # a parser warning, a redirect to tell config.yaml about

    @property
    def failed(self) -> bool:
        return self.error is not None


def check_feeds(config: Config, workers: FeedWorkers | None = None) -> list[FeedCheck]:
    """Every configured feed, asked and read once; in config order."""
    results = fetch_feeds(config.feeds, {}, config.fetch)
    parsed = parse_bodies(config, results, workers)
    checks = []
    for feed, result in zip(config.feeds, results, strict=True):
        work = parsed.get(feed.name)
        feed_read = work.parsed if work else None
        error = result.error if result.outcome == FAILED else None
        if feed_read and feed_read.error:
            error = feed_read.error
        notes = [feed_read.warning if feed_read else None]
        if result.moved_to:
            notes.append(f"moved permanently to {config.redact(result.moved_to)}")
        elif result.final_url and result.final_url != feed.url:
            notes.append(f"redirects (temporarily) to {config.redact(result.final_url)}")
        checks.append(
            FeedCheck(
                feed_id=feed.name,
                url=feed.public_url,
                status_code=result.status_code,
                content_type=result.headers.get("content-type"),
                entries=feed_read.entries_seen if feed_read else 0,
                newest_at=feed_read.newest_at if feed_read else None,
                error=config.redact(error),
                note=config.redact("; ".join(n for n in notes if n)) or None,
            )
        )
    return checks
