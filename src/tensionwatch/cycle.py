"""One monitoring cycle as plain steps with plain values between them.

    load_states ─▶ fetch_feeds ─▶ parse_and_score ─▶ store_batch
    (read-only)    (fetch.py)     (pure: a CycleBatch)  (one write transaction)

flows/monitor.py wraps each step in a Prefect task; nothing here imports Prefect. A
CycleBatch holds everything a cycle learned, so it can also be kept as a JSON file when the
database cannot be written, and stored by the next cycle (see store.py).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from tensionwatch.config import Config
from tensionwatch.fetch import FAILED, OK, FetchResult
from tensionwatch.parse import Story, parse_feed
from tensionwatch.score import CompiledRules, TopicScore, compile_topics, score_story


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """One feed in one cycle: a row of `fetches` and the feed's new conditional-GET state."""

    fetch_id: str
    feed_id: str
    url: str
    started_at: datetime
    outcome: str
    duration_ms: int
    attempts: int
    bytes: int
    entries_seen: int = 0
    final_url: str | None = None
    status_code: int | None = None
    error: str | None = None
    warning: str | None = None
    title: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None

    @property
    def failed(self) -> bool:
        return self.outcome == FAILED


@dataclass(slots=True)
class CycleBatch:
    run_id: str
    started_at: datetime
    finished_at: datetime
    rules_versions: dict[str, str]
    outcomes: list[FeedOutcome] = field(default_factory=list)
    stories: list[Story] = field(default_factory=list)
    scores: list[tuple[str, TopicScore]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "rules_versions": self.rules_versions,
            "outcomes": [_plain(asdict(o)) for o in self.outcomes],
            "stories": [_plain(asdict(s)) for s in self.stories],
            "scores": [[sid, asdict(score)] for sid, score in self.scores],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CycleBatch:
        return cls(
            run_id=data["run_id"],
            started_at=datetime.fromisoformat(data["started_at"]),
            finished_at=datetime.fromisoformat(data["finished_at"]),
            rules_versions=data["rules_versions"],
            outcomes=[FeedOutcome(**_times(FeedOutcome, o)) for o in data["outcomes"]],
            stories=[Story(**_times(Story, s)) for s in data["stories"]],
            scores=[(sid, TopicScore(**score)) for sid, score in data["scores"]],
        )


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def _times(kind: type, row: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(kind) if f.name.endswith("_at")}
    return {k: datetime.fromisoformat(v) if k in names and v else v for k, v in row.items()}


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What a stored cycle did, for the summary the CLI prints."""

    batch: CycleBatch
    new_story_ids: frozenset[str]
    pending_stored: int = 0  # cycles kept from earlier failed writes, stored now
    stale_topics: list[str] = field(default_factory=list)  # rules changed; history not rescored


def new_batch(config: Config) -> CycleBatch:
    versions = {name: topic.rules_version() for name, topic in config.topics.items()}
    now = datetime.now(UTC)
    return CycleBatch(
        run_id=str(uuid.uuid4()), started_at=now, finished_at=now, rules_versions=versions
    )


def parse_and_score(
    config: Config,
    batch: CycleBatch,
    results: list[FetchResult],
    rules: CompiledRules | None = None,
) -> CycleBatch:
    """Parse every fetched body, drop repeats within the cycle, score each story per topic."""
    rules = rules if rules is not None else compile_topics(config.topics)
    feeds = {feed.name: feed for feed in config.feeds}
    seen: set[str] = set()
    for result in results:
        parsed = None
        if result.outcome == OK and result.body is not None:
            feed = feeds[result.feed_id]
            parsed = parse_feed(
                feed.name,
                result.final_url or feed.url,
                feed.language,
                result.body,
                result.headers,
                result.started_at,
            )
            for story in parsed.stories:
                if story.story_id not in seen:
                    seen.add(story.story_id)
                    batch.stories.append(story)
        outcome = result.outcome
        if parsed is not None and parsed.error:
            outcome = FAILED
        batch.outcomes.append(
            FeedOutcome(
                fetch_id=str(uuid.uuid4()),
                feed_id=result.feed_id,
                url=result.url,
                started_at=result.started_at,
                outcome=outcome,
                duration_ms=result.duration_ms,
                attempts=result.attempts,
                bytes=result.bytes_read,
                entries_seen=parsed.entries_seen if parsed else 0,
                final_url=result.final_url,
                status_code=result.status_code,
                error=(parsed.error if parsed else None) or result.error,
                warning=parsed.warning if parsed else None,
                title=parsed.title if parsed else None,
                etag=result.etag,
                last_modified=result.last_modified,
                body_hash=result.body_hash,
            )
        )
    for story in batch.stories:
        for topic_score in score_story(rules, story.title, story.summary, story.language):
            batch.scores.append((story.story_id, topic_score))
    batch.finished_at = datetime.now(UTC)
    return batch
