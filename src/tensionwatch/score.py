"""Score stories against a topic's rules: a pure function of folded text and compiled rules.

A topic's terms are compiled once (`compile_topic`) into a single regex over the *first word*
of every term, built as a trie so the regex engine branches one character at a time instead
of trying hundreds of alternatives at every word. Each first-word hit is then resolved in
Python against the few terms that start with it (the rest of a phrase is checked with
`str.startswith`). Every term occurrence is found, whatever other terms overlap it.

Term syntax (after folding, see text.fold): whole words; a space-separated phrase; a
trailing `*` for a prefix of the last word (`escalat*`, `machine tool*`, `ihracat*`).

Score = Σ weight × min(count, cap) × (title_boost if the term is in the headline), over
signal and counter terms. A story is *relevant* when every actor group matched, no exclusion
matched and (with `require_signal`) at least one signal or counter term matched; the score of
a story that is not relevant is 0, but its matches are kept so the decision can be explained.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tensionwatch.config import Topic
from tensionwatch.text import fold

ACTOR, SIGNAL, COUNTER, EXCLUSION = "actor", "signal", "counter", "exclusion"


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # as written in config.yaml, shown in explanations
    role: str  # actor / signal / counter / exclusion
    group: str  # actor group name, or the signal class (threat/act)
    weight: float
    cap: int


@dataclass(frozen=True, slots=True)
class TopicScore:
    topic: str
    rules_version: str
    score: float
    relevant: bool
    matches: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Tail:
    term: int  # index into TopicMatcher.terms
    rest: str  # folded text after the first word ("" for one-word terms)
    rest_is_prefix: bool


def _split_term(text: str) -> tuple[str, str, bool]:
    """Folded first word, the rest of the phrase, and whether the term ends with `*`."""
    folded = " ".join(fold(text).split())
    is_prefix = folded.endswith("*")
    folded = folded.rstrip("*").rstrip()
    first, _, rest = folded.partition(" ")
    return first, (" " + rest if rest else ""), is_prefix


def _trie_pattern(words: dict[str, bool]) -> str:
    """Regex for a set of words (value True = prefix word), longest alternatives first."""
    trie: dict[str, Any] = {}
    for word, is_prefix in words.items():
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node["\0prefix" if is_prefix else "\0exact"] = True

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(c) + emit(child) for c, child in node.items() if len(c) == 1]
        if node.get("\0prefix"):
            branches.append(r"\w*")
        if node.get("\0exact"):
            branches.append(r"\b")
        if len(branches) == 1:
            return branches[0]
        return "(?:" + "|".join(branches) + ")"

    return emit(trie)


class TopicMatcher:
    """One topic's rules, compiled once per cycle; `score(title, summary)` is pure."""

    def __init__(self, name: str, topic: Topic):
        self.name = name
        self.topic = topic
        self.rules_version = topic.rules_version()
        self.group_names = list(topic.actors)
        terms: list[Term] = []
        for group, texts in topic.actors.items():
            terms += [Term(t, ACTOR, group, 0.0, 1) for t in texts]
        for s in topic.signals:
            terms.append(Term(s.term, SIGNAL, s.kind, s.weight, s.cap or topic.max_count))
        for c in topic.counters:
            terms.append(Term(c.term, COUNTER, "counter", c.weight, c.cap or topic.max_count))
        terms += [Term(t, EXCLUSION, "exclusion", 0.0, 1) for t in topic.exclusions]
        self.terms = terms

        # First word → the terms that start with it. A one-word prefix term (`escalat*`) is
        # keyed by its prefix and found by slicing the hit to each known prefix length.
        exact: dict[str, list[_Tail]] = {}
        prefix: dict[str, list[_Tail]] = {}
        words: dict[str, bool] = {}
        for index, term in enumerate(terms):
            first, rest, is_prefix = _split_term(term.text)
            if not first:
                continue
            if is_prefix and not rest:
                prefix.setdefault(first, []).append(_Tail(index, "", True))
                words[first] = True
            else:
                exact.setdefault(first, []).append(_Tail(index, rest, is_prefix))
                words.setdefault(first, False)
        self._exact = exact
        self._prefix = prefix
        self._prefix_lengths = sorted({len(p) for p in prefix})
        self._regex = re.compile(r"\b" + _trie_pattern(words)) if words else None

    def count(self, folded: str) -> dict[int, int]:
        """Occurrences of each term (by index) in folded text."""
        counts: dict[int, int] = {}
        if self._regex is None:
            return counts
        exact, prefix, lengths = self._exact, self._prefix, self._prefix_lengths
        for hit in self._regex.finditer(folded):
            word = hit.group()
            end = hit.end()
            tails = exact.get(word, ())
            if lengths:
                for length in lengths:
                    if length > len(word):
                        break
                    more = prefix.get(word[:length])
                    if more:
                        tails = [*tails, *more]
            for tail in tails:
                if tail.rest:
                    if not folded.startswith(tail.rest, end):
                        continue
                    after = end + len(tail.rest)
                    if not tail.rest_is_prefix and after < len(folded) and _is_word(folded[after]):
                        continue
                counts[tail.term] = counts.get(tail.term, 0) + 1
        return counts

    def score(self, title: str, summary: str) -> TopicScore:
        """Score one story from its clean title and summary (folded here)."""
        return self.score_folded(fold(title), fold(summary))

    def score_folded(self, title: str, summary: str) -> TopicScore:
        in_title = self.count(title)
        in_body = self.count(summary)
        terms = self.terms
        actors: dict[str, dict[str, int]] = {}
        signals: list[dict[str, Any]] = []
        excluded: list[str] = []
        total = 0.0
        for index in sorted(in_title.keys() | in_body.keys()):
            term = terms[index]
            title_n, body_n = in_title.get(index, 0), in_body.get(index, 0)
            if term.role == ACTOR:
                actors.setdefault(term.group, {})[term.text] = title_n + body_n
            elif term.role == EXCLUSION:
                excluded.append(term.text)
            else:
                counted = min(title_n + body_n, term.cap)
                boost = self.topic.title_boost if title_n else 1.0
                points = term.weight * counted * boost
                total += points
                signals.append(
                    {
                        "term": term.text,
                        "role": term.role,
                        "class": term.group,
                        "weight": term.weight,
                        "count": title_n + body_n,
                        "in_title": title_n > 0,
                        "points": round(points, 4),
                    }
                )
        missing = [g for g in self.group_names if g not in actors]
        relevant = not missing and not excluded and (bool(signals) or not self.topic.require_signal)
        matches: dict[str, Any] = {"actors": actors, "signals": signals}
        if missing:
            matches["missing_groups"] = missing
        if excluded:
            matches["excluded_by"] = excluded
        return TopicScore(
            topic=self.name,
            rules_version=self.rules_version,
            score=round(total, 4) if relevant else 0.0,
            relevant=relevant,
            matches=matches,
        )


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def compile_topics(topics: dict[str, Topic]) -> list[TopicMatcher]:
    """Compile every topic once; the matchers are reused for all stories of a cycle."""
    return [TopicMatcher(name, topic) for name, topic in topics.items()]


def score_story(matchers: list[TopicMatcher], title: str, summary: str) -> list[TopicScore]:
    """Score one story against every topic (the text is folded once)."""
    folded_title, folded_summary = fold(title), fold(summary)
    return [m.score_folded(folded_title, folded_summary) for m in matchers]
