"""What a stored cycle found, as plain values, and as the texts that report it.

One computation, three outputs: the CLI's summary (cli.print_summary renders it with rich),
the Markdown artifact each Prefect flow run publishes, and one greppable log line. Story text
in the Markdown is made inert (messages.inert_markdown / safe_link): a headline can forge
neither a link nor markup in the Prefect UI.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tensionwatch.config import Config
from tensionwatch.cycle import CycleReport, no_feed_answered
from tensionwatch.fetch import FAILED, NOT_MODIFIED, OK, UNCHANGED
from tensionwatch.messages import inert_markdown, inert_text, safe_link
from tensionwatch.polling import NOT_DUE, RETIRED, WAITING
from tensionwatch.store import Store, load_statements, sql_dir

SQL = load_statements(sql_dir() / "summary.sql")


@dataclass(frozen=True, slots=True)
class TopStory:
    topic: str
    score: float
    title: str
    url: str | None
    terms: list[str]
    actors: dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class FeedFailure:
    feed: str
    error: str
    next_due_at: datetime | None  # when it is asked again (polling.py), and why
    due_reason: str | None


@dataclass(frozen=True, slots=True)
class TopicIndex:
    """A topic's index today so far against the 28 days before it (topic_trend)."""

    topic: str
    day: str
    index: float | None
    mean_28d: float | None
    relevant_stories: int
    poor_coverage: bool


@dataclass(frozen=True, slots=True)
class CycleSummary:
    run_id: str
    feeds: int
    ok: int
    unchanged: int
    failed: int
    not_due: int  # not asked: healthy, its interval has not run out
    waiting: int  # not asked: backing off, or told to wait by the server
    retired: int  # not asked: it answered 410 Gone
    new_stories: int
    pending_stored: int
    failures: list[FeedFailure]
    warnings: list[tuple[str, str]]  # (feed, warning)
    notes: list[str]
    stale_topics: list[str]
    relevant: dict[str, int]  # topic → relevant new stories
    unscored: dict[str, Counter[str]]  # topic → language → new stories not scored
    top: list[TopStory]
    # Why no feed asked answered (cycle.no_feed_answered): "network" (none could even be
    # reached), "failed", or None.
    no_feed_answered: str | None
    index: list[TopicIndex] = field(default_factory=list)

    @property
    def asked(self) -> int:
        return self.feeds - self.not_due - self.waiting - self.retired


def summarise(config: Config, report: CycleReport, top: int = 5) -> CycleSummary:
    batch = report.batch
    outcomes = batch.outcomes
    count = Counter(o.outcome for o in outcomes)
    new_ids = report.new_story_ids
    stories = {s.story_id: s for s in batch.stories}
    new_scores = [(sid, sc) for sid, sc in batch.scores if sid in new_ids]
    relevant = {name: 0 for name in config.topics}
    unscored: dict[str, Counter[str]] = {}
    for sid, sc in new_scores:
        relevant[sc.topic] += sc.relevant
        if not sc.scored:
            unscored.setdefault(sc.topic, Counter())[stories[sid].language] += 1
    ranked = sorted((x for x in new_scores if x[1].relevant), key=lambda x: -x[1].score)[:top]
    return CycleSummary(
        run_id=batch.run_id,
        feeds=len(outcomes),
        ok=count[OK],
        unchanged=count[NOT_MODIFIED] + count[UNCHANGED],
        failed=count[FAILED],
        not_due=count[NOT_DUE],
        waiting=count[WAITING],
        retired=count[RETIRED],
        new_stories=len(new_ids),
        pending_stored=report.pending_stored,
        failures=[
            FeedFailure(o.feed_id, o.error or "", o.next_due_at, o.due_reason)
            for o in outcomes
            if o.failed
        ],
        warnings=[(o.feed_id, o.warning) for o in outcomes if not o.failed and o.warning],
        notes=list(report.notes),
        stale_topics=list(report.stale_topics),
        relevant=relevant,
        unscored=unscored,
        top=[
            TopStory(
                topic=sc.topic,
                score=sc.score,
                title=stories[sid].title,
                url=stories[sid].url,
                terms=[f"{m['term']}×{m['count']}" for m in sc.matches.get("signals", [])],
                actors={g: list(t) for g, t in sc.matches.get("actors", {}).items()},
            )
            for sid, sc in ranked
        ],
        no_feed_answered=no_feed_answered((o.outcome, o.error) for o in outcomes),
    )


def log_line(summary: CycleSummary, alerts: Any = None) -> str:
    """One line a log search finds: `cycle stored run=… feeds=… ok=… relevant.topic=…`."""
    parts = [
        f"cycle stored run={summary.run_id[:8]}",
        f"feeds={summary.feeds} ok={summary.ok} unchanged={summary.unchanged} "
        f"failed={summary.failed} not_due={summary.not_due} waiting={summary.waiting} "
        f"retired={summary.retired} new={summary.new_stories}",
        *[f"relevant.{topic}={n}" for topic, n in summary.relevant.items()],
    ]
    if alerts is not None:
        parts.append(f"alerts={len(alerts.alerts)}")
    if summary.pending_stored:
        parts.append(f"pending_stored={summary.pending_stored}")
    return " ".join(parts)


def _md_row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown(
    config: Config, summary: CycleSummary, alerts: Any = None, alerts_error: str | None = None
) -> str:
    """The run's artifact in the Prefect UI: feeds, new and relevant stories per topic, the
    index against its baseline, the alerts, the top stories (story text inert)."""
    lines = [
        f"## Cycle {summary.run_id[:8]}",
        "",
        f"**Feeds:** {summary.feeds} · {summary.ok} ok · {summary.unchanged} unchanged · "
        f"{summary.failed} failed · {summary.not_due} not due · {summary.waiting} waiting · "
        f"{summary.retired} retired · **{summary.new_stories} new stories**"
        + (
            f" · {summary.pending_stored} earlier cycle(s) stored from pending"
            if summary.pending_stored
            else ""
        ),
        "",
    ]
    if summary.no_feed_answered == "network":
        lines += ["**No feed could be reached: the network looks down.**", ""]
    elif summary.no_feed_answered:
        lines += ["**No feed answered.**", ""]
    for failure in summary.failures:
        when = (
            f" (asked again {failure.next_due_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC: "
            f"{inert_markdown(failure.due_reason)})"
            if failure.next_due_at and failure.due_reason
            else ""
        )
        lines.append(
            f"- failed: `{inert_text(failure.feed)}`: {inert_markdown(failure.error)}{when}"
        )
    for note in summary.notes:
        lines.append(f"- note: {inert_markdown(note)}")
    if summary.failures or summary.notes:
        lines.append("")
    indexed = {i.topic: i for i in summary.index}
    lines += [
        _md_row("topic", "relevant new", "index today", "28-day mean", "coverage"),
        _md_row("---", "---:", "---:", "---:", "---"),
    ]
    for topic, n in summary.relevant.items():
        i = indexed.get(topic)
        lines.append(
            _md_row(
                inert_markdown(config.topics[topic].title),
                n,
                "—" if i is None or i.index is None else f"{i.index:.1f}",
                "—" if i is None or i.mean_28d is None else f"{i.mean_28d:.1f}",
                "" if i is None else ("poor" if i.poor_coverage else "ok"),
            )
        )
    lines.append("")
    if alerts_error:
        lines += [f"**Alerts:** detection or delivery failed: {inert_markdown(alerts_error)}", ""]
    elif alerts is not None:
        raised = [a["title"] for a in alerts.alerts]
        sent = sum(1 for d in alerts.deliveries if d.state == "sent")
        lines.append(
            f"**Alerts:** {len(raised)} raised, {sent} deliveries sent"
            + (" (dry run: none recorded or sent)" if alerts.dry_run else "")
        )
        lines += [f"- {inert_markdown(title)}" for title in raised]
        lines.append("")
    if summary.top:
        lines += [
            f"### Top {len(summary.top)} new stories by score",
            "",
            _md_row("score", "topic", "story", "terms"),
            _md_row("---:", "---", "---", "---"),
        ]
        for story in summary.top:
            link = safe_link(story.url)
            title = inert_markdown(story.title)
            lines.append(
                _md_row(
                    f"{story.score:.1f}",
                    inert_text(story.topic),
                    f"[{title}]({link})" if link else title,
                    inert_markdown(", ".join(story.terms)),
                )
            )
    return "\n".join(lines) + "\n"


def index_today(store: Store, topics: list[str]) -> list[TopicIndex]:
    """Each topic's index today (UTC, so far) and its 28-day mean, from the file readers open."""
    with store.reading() as con:
        rows = con.execute(SQL["index_today"], {"topic": topics}).fetchall()
    return [TopicIndex(*row) for row in rows]
