"""One monitoring cycle as plain steps with plain values between them.

    load_states ─▶ poll_feeds ─▶ parse_and_score ─▶ store_batch
    (read-only)    (the due ones:  (pure: a CycleBatch)  (one write transaction)
                    fetch.py)

flows/monitor.py wraps each step in a Prefect task; nothing here imports Prefect. A
CycleBatch holds everything a cycle learned, so it can also be kept as a JSON file when the
database cannot be written, and stored by the next cycle (see store.py). Every configured
feed has an outcome in every cycle, asked or not (polling.NOT_ASKED), and each outcome
carries the feed's polling state after it (polling.py), so a kept batch remembers that too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from tensionwatch import polling
from tensionwatch.config import Config
from tensionwatch.fetch import FAILED, OK, FeedState, FetchResult, fetch_feeds
from tensionwatch.parse import Story
from tensionwatch.score import TopicScore
from tensionwatch.workers import (
    FeedBody,
    FeedWorkers,
    ParsedAndScored,
    failed_body,
    feed_workers,
)


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
    # The feed's polling state after this cycle (polling.py). `failures` is None only in
    # batches kept by a tensionwatch from before polling: the store then counts as it did.
    next_due_at: datetime | None = None
    due_reason: str | None = None
    failures: int | None = None
    retired_at: datetime | None = None
    moved_to: str | None = None  # secrets hidden, as `url`
    ttl_minutes: int | None = None

    @property
    def failed(self) -> bool:
        return self.outcome == FAILED

    @property
    def asked(self) -> bool:
        return self.outcome not in polling.NOT_ASKED

    def state(self) -> FeedState:
        """The feed's state after this cycle, as the next cycle needs it."""
        return FeedState(
            self.url, self.etag, self.last_modified, self.body_hash, self.moved_to,
            self.failures or 0, self.next_due_at, self.due_reason, self.retired_at,
            self.ttl_minutes,
        )  # fmt: skip


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


def poll_feeds(
    config: Config, states: dict[str, FeedState], now: datetime | None = None
) -> list[FetchResult]:
    """Ask the feeds that are due at `now` (polling.is_due), each at its remembered new
    address if it moved; the others are not asked at all, and get a result saying why
    (polling.NOT_ASKED). One result per configured feed, in config order."""
    now = now or datetime.now(UTC)
    due, addresses, skipped = [], {}, {}
    for feed in config.feeds:
        state = states.get(feed.name, FeedState())
        if not polling.is_due(state.next_due_at, state.due_reason, now, feed.retire_when_gone):
            outcome = polling.not_asked(state.due_reason, state.consecutive_failures)
            skipped[feed.name] = FetchResult(feed.name, feed.url, now, outcome, previous=state)
            continue
        due.append(feed)
        if state.moved_to:
            addresses[feed.name] = config.expand(state.moved_to)
    fetched = iter(fetch_feeds(due, states, config.fetch, addresses) if due else [])
    return [skipped.get(feed.name) or next(fetched) for feed in config.feeds]


def parse_bodies(
    config: Config, results: list[FetchResult], workers: FeedWorkers | None = None
) -> dict[str, ParsedAndScored]:
    """Parse and score every fetched body in worker processes (workers.py), each under
    `parse.timeout_seconds`; a body that fails, however it fails, carries its error. Pass
    `workers` to reuse a pool across calls; by default one is started for this call."""
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
    return {job.feed_id: work for job, work in zip(jobs, done, strict=True)}


def no_feed_answered(outcomes: Iterable[tuple[str, str | None]]) -> str | None:
    """Why no feed asked in a cycle answered, from its (outcome, error) pairs: "network" when
    none could even be reached (the network looks down, or every address is wrong), "failed"
    when they all failed otherwise; None when one answered or none was asked."""
    asked = [(o, e) for o, e in outcomes if o not in polling.NOT_ASKED]
    if not asked or any(o != FAILED for o, _ in asked):
        return None
    if all((e or "").startswith("cannot connect") for _, e in asked):
        return "network"
    return "failed"


def parse_and_score(
    config: Config,
    batch: CycleBatch,
    results: list[FetchResult],
    workers: FeedWorkers | None = None,
) -> CycleBatch:
    """Parse every fetched body, drop repeats within the cycle, score each story per topic,
    and work out when each feed is next due (polling.py).

    Bodies are parsed and scored in worker processes (parse_bodies). Pass `workers` to reuse a
    pool across calls; by default one is started for this call.
    """
    feeds = {feed.name: feed for feed in config.feeds}
    parsed_by_feed = parse_bodies(config, results, workers)
    # A cycle in which no feed, on two hosts or more, could be reached says the network (or
    # this machine) is down, not the feeds: their backoff does not grow (polling.py).
    hosts = {urlsplit(r.final_url or r.url).netloc for r in results if r.attempts}
    network_down = (
        no_feed_answered((r.outcome, r.error) for r in results) == "network" and len(hosts) > 1
    )

    seen: set[str] = set()
    for result in results:
        feed = feeds[result.feed_id]
        previous = result.previous
        if result.outcome in polling.NOT_ASKED:
            batch.outcomes.append(_not_asked(result, feed.public_url))
            continue
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
        answered = outcome != FAILED
        read = parsed is not None and not parsed.error  # a body read now: its <ttl> counts
        ttl = parsed.ttl_minutes if read and parsed else previous.ttl_minutes
        schedule = polling.after_fetch(
            result.feed_id,
            failures=previous.consecutive_failures,
            answered=answered,
            status=result.status_code,
            now=result.started_at + timedelta(milliseconds=result.duration_ms),
            settings=config.polling,
            interval_minutes=feed.interval_minutes,
            retry_after=result.retry_after,
            max_age=result.max_age if answered else None,
            ttl=ttl,
            network_down=network_down,
            retire=feed.retire_when_gone,
        )
        moved_to, moved_note = _moved(config, feed.public_url, previous, result, answered)
        warning = "; ".join(w for w in (parsed.warning if parsed else None, moved_note) if w)
        batch.outcomes.append(
            FeedOutcome(
                fetch_id=str(uuid.uuid4()),
                feed_id=result.feed_id,
                # Addresses and errors as they may be stored and shown: secrets hidden.
                url=feed.public_url,
                started_at=result.started_at,
                outcome=outcome,
                duration_ms=result.duration_ms,
                attempts=result.attempts,
                bytes=result.bytes_read,
                entries_seen=parsed.entries_seen if parsed else 0,
                final_url=config.redact(result.final_url),
                status_code=result.status_code,
                error=config.redact((parsed.error if parsed else None) or result.error),
                warning=warning or None,
                title=parsed.title if parsed else None,
                # Validators of a failed fetch stay those it was asked with: the body it got
                # (if any) was never read.
                etag=result.etag if answered else previous.etag,
                last_modified=result.last_modified if answered else previous.last_modified,
                body_hash=result.body_hash if answered else previous.body_hash,
                next_due_at=schedule.next_due_at,
                due_reason=schedule.reason,
                failures=schedule.failures,
                retired_at=schedule.retired_at,
                moved_to=moved_to,
                ttl_minutes=ttl,
            )
        )
    batch.finished_at = datetime.now(UTC)
    return batch


def _not_asked(result: FetchResult, url: str) -> FeedOutcome:
    """The outcome of a feed not asked this cycle: its state carried over as it was."""
    state = result.previous
    return FeedOutcome(
        fetch_id=str(uuid.uuid4()), feed_id=result.feed_id, url=url,
        started_at=result.started_at, outcome=result.outcome, duration_ms=0, attempts=0,
        bytes=0, etag=state.etag, last_modified=state.last_modified, body_hash=state.body_hash,
        next_due_at=state.next_due_at, due_reason=state.due_reason,
        failures=state.consecutive_failures, retired_at=state.retired_at,
        moved_to=state.moved_to, ttl_minutes=state.ttl_minutes,
    )  # fmt: skip


def _moved(
    config: Config, configured: str, previous: FeedState, result: FetchResult, answered: bool
) -> tuple[str | None, str | None]:
    """(the feed's remembered new address after this fetch, a note for the summary when it
    is new). A move is remembered when every redirect was permanent and the feed answered
    there, stored with secrets hidden, and only if expanding it again gives the very address
    (a password in it is masked for good: such a move is reported, not remembered)."""
    if not (answered and result.moved_to):
        return previous.moved_to, None
    public = config.redact(result.moved_to) or result.moved_to
    if public == configured:  # redirected back to where config.yaml points
        return None, None
    note = f"moved permanently to {public}: update its url in config.yaml"
    if config.expand(public) != result.moved_to:
        return previous.moved_to, note + " (not remembered: the new address has a password)"
    return public, (note if public != previous.moved_to else None)
