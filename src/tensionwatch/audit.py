"""Audits GPR-style: read a random sample of what the rules flag, and of what they nearly flag.

Caldara and Iacoviello validated their index by having people read samples of matched and
near-miss articles. `draw_sample` picks, per topic and under its current rules, N stories the
rules flag and N near misses (every actor group named, not flagged) at random (reproducible
with a seed), and `write_sample` writes them as JSON Lines with an empty `label` for a person
to fill: 1 relevant, 0 not. `read_labels` and `summarize` turn the labelled file into
precision (relevant among flagged) and the near-miss relevant rate (relevant among near misses),
each with a 95% Wilson interval, which holds up for the small samples people can read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tensionwatch.errors import TensionwatchError
from tensionwatch.evaluation import read_json_lines
from tensionwatch.store import Store, load_statements, sql_dir

FLAGGED, NEAR_MISS = "flagged", "near_miss"
KINDS = (FLAGGED, NEAR_MISS)


@dataclass(frozen=True, slots=True)
class Rate:
    """Relevant items among those labelled, with a 95% Wilson interval."""

    relevant: int
    labelled: int

    @property
    def value(self) -> float | None:
        return self.relevant / self.labelled if self.labelled else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.relevant, self.labelled) if self.labelled else None


@dataclass(frozen=True, slots=True)
class TopicAudit:
    topic: str
    rules_versions: tuple[str, ...]
    precision: Rate  # relevant among the flagged stories read
    near_miss_relevant: Rate  # relevant among the near misses read
    unlabelled: int


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval for a proportion (95% by default)."""
    if n <= 0:
        raise ValueError("no trials")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def draw_sample(
    store: Store,
    topics: list[str],
    per_kind: int,
    seed: int = 0,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    """Up to `per_kind` flagged stories and near misses per topic, and each kind's population."""
    sql = load_statements(sql_dir() / "audit.sql")
    items: list[dict[str, Any]] = []
    population: dict[str, dict[str, int]] = {}
    window = {"since": since, "until": until}
    with store.reading() as con:
        for topic in topics:
            ((flagged, near),) = con.execute(
                sql["audit_population"], {"topic": topic, **window}
            ).fetchall()
            population[topic] = {FLAGGED: flagged, NEAR_MISS: near}
            for kind in KINDS:
                params = {"topic": topic, "kind": kind, "seed": str(seed), "n": per_kind, **window}
                cursor = con.execute(sql["audit_sample"], params)
                columns = [d[0] for d in cursor.description]
                for row in cursor.fetchall():
                    story = dict(zip(columns, row, strict=True))
                    story["event_at"] = story["event_at"].isoformat()
                    items.append({"topic": topic, "kind": kind, **story, "label": None, "note": ""})
    return items, population


def write_sample(path: Path, items: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")


def read_labels(path: Path) -> list[dict[str, Any]]:
    """A sample file with labels filled in; a bad line or label is an error naming the line."""
    items = []
    for number, item in read_json_lines(path):
        if not isinstance(item, dict) or item.get("kind") not in KINDS or "topic" not in item:
            raise TensionwatchError(f"{path}:{number}: not a line of an audit sample")
        if item.get("label") not in (None, 0, 1, True, False):
            raise TensionwatchError(
                f"{path}:{number}: label must be 1 (relevant), 0 (not) or null (unread)"
            )
        items.append(item)
    return items


def summarize(items: list[dict[str, Any]]) -> list[TopicAudit]:
    """Per topic, in order of first appearance: precision, near-miss relevant rate, unread."""
    audits = []
    for topic in dict.fromkeys(str(item["topic"]) for item in items):
        mine = [item for item in items if item["topic"] == topic]
        labelled = [item for item in mine if item.get("label") is not None]

        def rate(kind: str, rows: list[dict[str, Any]] = labelled) -> Rate:
            of_kind = [item for item in rows if item["kind"] == kind]
            return Rate(sum(1 for item in of_kind if item["label"]), len(of_kind))

        versions = tuple(sorted({str(item.get("rules_version")) for item in mine}))
        audits.append(
            TopicAudit(topic, versions, rate(FLAGGED), rate(NEAR_MISS), len(mine) - len(labelled))
        )
    return audits
