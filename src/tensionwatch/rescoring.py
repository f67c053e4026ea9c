"""Rescore stored stories under the current rules, in bulk, in one transaction.

The new scores are stored beside the old ones under the new rules version (or replace them
with `replace=True`); the current version becomes the one the trend views show. Stories whose
text a prune removed (retention.py) are left as they are, with their scores: scored from the
headline alone they would be other stories under the same rules version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from tensionwatch.config import Config
from tensionwatch.errors import TensionwatchError
from tensionwatch.score import CompiledRules, TopicScore, compile_topics
from tensionwatch.store import Store
from tensionwatch.text import fold

CHUNK = 20_000  # stories read, scored and inserted at a time: bounded memory at any size


@dataclass(frozen=True, slots=True)
class RescoreReport:
    stories: int
    versions: dict[str, str]  # topic → the rules version now current
    counts: list[tuple[str, str, int, int]]  # topic, rules_version, stories, relevant
    seconds: float
    notes: list[str] = field(default_factory=list)  # e.g. the read copy could not be refreshed


def select_rules(config: Config, topics: list[str] | None) -> CompiledRules:
    unknown = sorted(set(topics or []) - set(config.topics))
    if unknown:
        raise TensionwatchError(
            f"no topic {', '.join(unknown)} in the config (topics: {', '.join(config.topics)})"
        )
    chosen = topics or list(config.topics)
    return compile_topics({name: config.topics[name] for name in chosen})


def rescore(
    store: Store,
    config: Config,
    topics: list[str] | None = None,
    since: datetime | None = None,
    replace: bool = False,
) -> RescoreReport:
    """Score stored stories (from `since` on) with the current rules of the chosen topics."""
    started = time.monotonic()
    rules = select_rules(config, topics)
    versions = {m.name: m.rules_version for m in rules}
    total = 0
    with store.connect() as con:
        store.migrate(con)
        reader = con.cursor()  # streams stories while `con` writes in its transaction
        con.execute("BEGIN TRANSACTION")
        try:
            store.record_rule_versions(con, config)
            if replace:
                for m in rules:
                    con.execute(
                        store.sql["replace_scores"],
                        {"topic": m.name, "rules_version": m.rules_version, "since": since},
                    )
            result = reader.execute(store.sql["stories_to_rescore"], {"since": since})
            while rows := result.fetchmany(CHUNK):
                scores: list[tuple[str, datetime, TopicScore]] = []
                for story_id, title, summary, language, event_at in rows:
                    for score in rules.score_folded(fold(title), fold(summary), language):
                        scores.append((story_id, event_at, score))
                store.insert_scores(con, scores, rescoring=True)
                total += len(rows)
            store.rebuild_trend_tables(con, since)
            for m in rules:  # the detector's kept windows held the old scores' figures
                con.execute(store.sql["forget_alert_windows"], {"topic": m.name})
            store.check_history(con, config, list(versions))  # rescored: stale no more?
            ((untouched, latest),) = con.execute(
                store.sql["stories_without_text"], {"since": since}
            ).fetchall()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            reader.close()
        counts = [tuple(row) for row in con.execute(store.sql["count_scores"]).fetchall()]
        if store.read_copy:
            con.execute("CHECKPOINT")
    notes: list[str] = []
    if untouched:
        notes.append(
            f"{untouched} stories up to {latest:%Y-%m-%d} were not rescored: a prune removed "
            "their text (retention.story_text_days); they keep the scores they had"
        )
    if store.read_copy:
        store.publish_read_copy(notes)  # readers see the new scores now, not after a cycle
    return RescoreReport(
        stories=total,
        versions=versions,
        counts=[c for c in counts if c[0] in versions],  # type: ignore[misc]
        seconds=time.monotonic() - started,
        notes=notes,
    )
