"""Evaluate topic rules against a labelled set of news items, beside the baseline "both named"
(relevant = every party of the topic is named anywhere in the item).

A labelled set is JSON Lines, one item per line, with `title`, `summary` and, per topic, a
0/1 label under the topic's name (`iran_israel`, `tr_ru`, …) and, for positives, an
`intensity` of low / medium / high. tests/data/labelled_news.jsonl is the team's own set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tensionwatch.errors import TensionwatchError
from tensionwatch.score import CompiledRules, TopicScore, score_story

INTENSITY_RANK = {"low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True, slots=True)
class Miss:
    """An item the rules got wrong, with what fired."""

    item_id: str
    title: str
    expected: bool
    score: TopicScore


@dataclass(slots=True)
class TopicEvaluation:
    topic: str
    items: int = 0
    true_pos: int = 0
    false_pos: int = 0
    false_neg: int = 0
    spearman: float | None = None
    misses: list[Miss] = field(default_factory=list)
    # The plain baseline an analyst compares with first: relevant = both parties named.
    baseline: TopicEvaluation | None = None
    # The same figures for the items of each language (`language` of an item; "?" if none).
    by_language: dict[str, TopicEvaluation] = field(default_factory=dict)

    def count(self, expected: bool, predicted: bool) -> None:
        self.items += 1
        self.true_pos += expected and predicted
        self.false_pos += predicted and not expected
        self.false_neg += expected and not predicted

    @property
    def precision(self) -> float:
        predicted = self.true_pos + self.false_pos
        return self.true_pos / predicted if predicted else 0.0

    @property
    def recall(self) -> float:
        actual = self.true_pos + self.false_neg
        return self.true_pos / actual if actual else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def read_json_lines(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line; a line that is not JSON is an error
    naming it. Bytes that are not UTF-8 are read as U+FFFD, so a damaged file still says where."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise TensionwatchError(f"{path}:{number}: not valid JSON ({exc.msg})") from None


def load_labelled(path: str | Path) -> list[dict[str, Any]]:
    """Read a labelled set; a bad line is an error naming the line."""
    items = []
    for number, item in read_json_lines(path):
        if not isinstance(item, dict) or "title" not in item:
            raise TensionwatchError(f"{path}:{number}: an item needs at least a title")
        items.append(item)
    return items


def _ranks(values: list[float]) -> list[float]:
    """Ranks starting at 1, ties given their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rank correlation (Pearson on tie-averaged ranks); None if undefined."""
    if len(xs) < 3:
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    mean_x, mean_y = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mean_x) * (b - mean_y) for a, b in zip(rx, ry, strict=True))
    var_x = sum((a - mean_x) ** 2 for a in rx)
    var_y = sum((b - mean_y) ** 2 for b in ry)
    if not var_x or not var_y:
        return None
    return float(cov / (var_x * var_y) ** 0.5)


def evaluate(matchers: CompiledRules, items: list[dict[str, Any]]) -> list[TopicEvaluation]:
    """Score every item against every topic that the set labels, and compare."""
    baselines = {m.name: TopicEvaluation(m.name) for m in matchers}
    results = {m.name: TopicEvaluation(m.name, baseline=baselines[m.name]) for m in matchers}
    intensity_pairs: dict[str, tuple[list[float], list[float]]] = {
        m.name: ([], []) for m in matchers
    }
    for number, item in enumerate(items, 1):
        scores = score_story(
            matchers, item["title"], item.get("summary") or "", item.get("language")
        )
        for score in scores:
            if score.topic not in item:
                continue
            result = results[score.topic]
            expected = bool(item[score.topic])
            both_named = bool(score.matches.get("parties_named"))
            result.count(expected, score.relevant)
            baselines[score.topic].count(expected, both_named)
            language = str(item.get("language") or "?")
            if language not in result.by_language:
                result.by_language[language] = TopicEvaluation(
                    score.topic, baseline=TopicEvaluation(score.topic)
                )
            per_language = result.by_language[language]
            per_language.count(expected, score.relevant)
            assert per_language.baseline is not None
            per_language.baseline.count(expected, both_named)
            if expected != score.relevant:
                item_id = str(item.get("id", f"line {number}"))
                result.misses.append(Miss(item_id, item["title"], expected, score))
            rank = INTENSITY_RANK.get(str(item.get("intensity")))
            if expected and rank:
                intensity_pairs[score.topic][0].append(score.score)
                intensity_pairs[score.topic][1].append(rank)
    for name, (scores_, ranks) in intensity_pairs.items():
        results[name].spearman = spearman(scores_, ranks)
    return [r for r in results.values() if r.items]
