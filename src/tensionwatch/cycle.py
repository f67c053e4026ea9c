"""One monitoring cycle as plain steps with plain values between them.

    load_states ─▶ fetch_feeds ─▶ parse_and_score ─▶ store_batch
    (read-only)    (fetch.py)     (pure: a CycleBatch)  (one write transaction)

flows/monitor.py wraps each step in a Prefect task; nothing here imports Prefect. A
CycleBatch holds everything a cycle learned, so it can also be kept as a JSON file when the
database cannot be written, and stored by the next cycle (see store.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from tensionwatch.config import Config
from tensionwatch.fetch import FAILED, OK, FetchResult
from tensionwatch.parse import Story
from tensionwatch.score import TopicScore
from tensionwatch.workers import FeedBody, FeedWorkers, failed_body, feed_workers


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
            "outcomes": [_plain(o) for o in self.outcomes],
            "stories": [_plain(s) for s in self.stories],
            "scores": [[sid, _plain(score)] for sid, score in self.scores],
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


def _plain(row: Any) -> dict[str, Any]:
    """A flat dataclass as a JSON-ready dict. Not dataclasses.asdict: it deep-copies every
    nested value, which took 2.5 s for a cold cycle's 25,000 stories (bench/RESULTS.md)."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name in _field_names(type(row))
        for value in (getattr(row, name),)
    }


@cache
def _field_names(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(kind))


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
    notes: list[str] = field(default_factory=list)  # e.g. a kept cycle that had to be set aside


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
    workers: FeedWorkers | None = None,
) -> CycleBatch:
    """Parse every fetched body, drop repeats within the cycle, score each story per topic.

    Bodies are parsed and scored in worker processes (workers.py), each under
    `parse.timeout_seconds`; a body that fails, however it fails, is its feed's error. Pass
    `workers` to reuse a pool across calls; by default one is started for this call.
    """
    feeds = {feed.name: feed for feed in config.feeds}
    fetched = [r for r in results if r.outcome == OK and r.body is not None]
    jobs = [
        FeedBody(
            feed_id=r.feed_id,
            feed_url=feeds[r.feed_id].url,
            language=feeds[r.feed_id].language,
            body=r.body or b"",
            headers=r.headers,
            fetched_at=r.started_at,
            base_url=r.final_url,
        )
        for r in fetched
    ]
    try:
        if workers is None and jobs:
            settings = config.parse
            with feed_workers(config.topics, settings.timeout_seconds, settings.workers) as pool:
                done = pool.run(jobs)
        else:
            done = workers.run(jobs) if workers is not None else []
    except Exception as exc:  # no worker could start (no processes left, say): every body fails
        reason = f"cannot start the parser processes ({type(exc).__name__}: {exc})"
        done = [failed_body(job, reason) for job in jobs]
    parsed_by_feed = {job.feed_id: work for job, work in zip(jobs, done, strict=True)}

    seen: set[str] = set()
    for result in results:
        work = parsed_by_feed.get(result.feed_id)
        parsed = work.parsed if work else None
        if work is not None and parsed is not None:
            for story in parsed.stories:
                if story.story_id in seen:
                    continue
                seen.add(story.story_id)
                if config.has_secrets:  # a private feed may echo its token in links
                    story = replace(
                        story, url=config.redact(story.url), guid=config.redact(story.guid)
                    )
                batch.stories.append(story)
                batch.scores.extend(
                    (story.story_id, sc) for sc in work.scores.get(story.story_id, [])
                )
        outcome = result.outcome
        if parsed is not None and parsed.error:
            outcome = FAILED
        batch.outcomes.append(
            FeedOutcome(
                fetch_id=str(uuid.uuid4()),
                feed_id=result.feed_id,
                # Addresses and errors as they may be stored and shown: secrets hidden.
                url=feeds[result.feed_id].public_url,
                started_at=result.started_at,
                outcome=outcome,
                duration_ms=result.duration_ms,
                attempts=result.attempts,
                bytes=result.bytes_read,
                entries_seen=parsed.entries_seen if parsed else 0,
                final_url=config.redact(result.final_url),
                status_code=result.status_code,
                error=config.redact((parsed.error if parsed else None) or result.error),
                warning=parsed.warning if parsed else None,
                title=parsed.title if parsed else None,
                etag=result.etag,
                last_modified=result.last_modified,
                body_hash=result.body_hash,
            )
        )
    batch.finished_at = datetime.now(UTC)
    return batch
