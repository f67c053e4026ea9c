"""Score stories against topic rules: a pure function of folded text and compiled rules.

`compile_topics` compiles every topic's terms once per cycle into one regex over the *first
word* of every term, built as a trie so the regex engine branches one character at a time
instead of trying hundreds of alternatives at every word; a story is scanned once for all
topics. Each first-word hit is resolved in Python against the few terms that start with it
(the rest of a phrase is checked with `str.startswith`), so every occurrence of every term is
found, whatever other terms overlap it.

Term syntax (after folding, see text.fold): whole words; a space-separated phrase; a
trailing `*` for a prefix of the last word (`escalat*`, `machine tool*`, `ihracat*`).

What each occurrence of a signal or counter term counts for:
- nothing if a longer weighted term covers it ("de-escalate" is not also "escalat*");
- nothing if the topic's proximity window puts it too far from every actor term;
- nothing, but it still marks the story as on topic, if a negator stands within the
  negation window before it (or after it: Turkish negates after the verb);
- otherwise its weight. Score = Σ weight × min(count, cap) × (title_boost if in the headline).

A story is *relevant* when every actor group matched (together, within the proximity window),
no exclusion matched, and at least one signal or counter term matched (`require_signal`).
The score of a story that is not relevant is 0; its matches are kept so that the decision can
be explained (`explain_hits` returns every occurrence with what was made of it).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

from tensionwatch.config import Topic
from tensionwatch.text import fold

ACTOR, SIGNAL, COUNTER, EXCLUSION = "actor", "signal", "counter", "exclusion"

# The version of the matching and scoring code (this module and text.fold). Bump it with any
# change that can change a score, a decision or `matches`: it is part of every rules_version,
# so stored scores say which code made them and `tensionwatch rescore` redoes them.
SCORER_VERSION = 2


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

    @property
    def scored(self) -> bool:
        """False for a story in a language the topic has no rules for: not checked, not calm."""
        return "skipped" not in self.matches


@dataclass(frozen=True, slots=True)
class _Tail:
    key: Any  # what the scanner reports for this term (its index, or topic and index)
    rest: str  # folded text after the first word ("" for one-word terms)
    rest_is_prefix: bool


class _Scanner:
    """Finds every occurrence of a set of terms in folded text with one regex pass."""

    def __init__(self, entries: list[tuple[Any, str]]):
        # First word → the terms that start with it. A one-word prefix term (`escalat*`) is
        # keyed by its prefix and found by slicing the hit to each known prefix length.
        exact: dict[str, list[_Tail]] = {}
        prefix: dict[str, list[_Tail]] = {}
        words: dict[str, bool] = {}
        for key, text in entries:
            first, rest, is_prefix = _split_term(text)
            if not first:
                continue
            if is_prefix and not rest:
                prefix.setdefault(first, []).append(_Tail(key, "", True))
                words[first] = True
            else:
                exact.setdefault(first, []).append(_Tail(key, rest, is_prefix))
                words.setdefault(first, False)
        self._exact = exact
        self._prefix = prefix
        self._prefix_lengths = sorted({len(p) for p in prefix})
        self._regex = None
        if words:
            # The lookahead on the possible first letters lets the engine skip most positions
            # before it tests the word boundary (measured ~15% faster than a bare \b).
            first_letters = "".join(sorted({w[0] for w in words}))
            self._regex = re.compile(
                f"(?=[{re.escape(first_letters)}])(?<!\\w)" + _trie_pattern(words)
            )

    def find(self, folded: str) -> list[tuple[Any, int, int]]:
        """Every occurrence, as (key, start, end)."""
        found: list[tuple[Any, int, int]] = []
        if self._regex is None:
            return found
        exact, prefix, lengths = self._exact, self._prefix, self._prefix_lengths
        for hit in self._regex.finditer(folded):
            word = hit.group()
            start, end = hit.span()
            tails = exact.get(word, ())
            if lengths:
                for length in lengths:
                    if length > len(word):
                        break
                    more = prefix.get(word[:length])
                    if more:
                        tails = [*tails, *more]
            for tail in tails:
                stop = end
                if tail.rest:
                    if not folded.startswith(tail.rest, end):
                        continue
                    stop = end + len(tail.rest)
                    if tail.rest_is_prefix:
                        while stop < len(folded) and _is_word(folded[stop]):
                            stop += 1
                    elif stop < len(folded) and _is_word(folded[stop]):
                        continue
                found.append((tail.key, start, stop))
        return found


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

        self._scanner = _Scanner([(index, term.text) for index, term in enumerate(terms)])
        self._needs_places = topic.proximity.actors != "story" or topic.proximity.signals != "story"
        self._negators_before = _negators(topic.negation.before)
        self._negators_after = _negators(topic.negation.after)

    def find(self, folded: str) -> list[tuple[int, int, int]]:
        """Every term occurrence in folded text, as (term index, start, end)."""
        return self._scanner.find(folded)

    def score(self, title: str, summary: str, language: str | None = None) -> TopicScore:
        """Score one story from its clean title and summary (folded here)."""
        return self.score_folded(fold(title), fold(summary), language)

    def score_folded(self, title: str, summary: str, language: str | None = None) -> TopicScore:
        return self.explain_folded(title, summary, language)[0]

    def explain_folded(
        self, title: str, summary: str, language: str | None = None
    ) -> tuple[TopicScore, list[Hit]]:
        """The score and every occurrence behind it, with what was made of each."""
        texts = (title, summary)
        hits = [Hit(t, field, a, b) for field in (0, 1) for t, a, b in self.find(texts[field])]
        return self.explain_hits(texts, hits, language)

    def explain_hits(
        self, texts: tuple[str, str], hits: list[Hit], language: str | None = None
    ) -> tuple[TopicScore, list[Hit]]:
        """Score from the occurrences already found in (folded title, folded summary)."""
        topic = self.topic
        if language and topic.languages and language not in topic.languages:
            matches = {"actors": {}, "signals": [], "skipped": f"language {language}"}
            return TopicScore(self.name, self.rules_version, 0.0, False, matches), []
        if not hits:  # most stories of a news stream: nothing more to work out
            matches = {"actors": {}, "signals": [], "missing_groups": self.group_names}
            return TopicScore(self.name, self.rules_version, 0.0, False, matches), hits
        terms = self.terms
        actor_hits: list[Hit] = []
        weighted: list[Hit] = []
        actors: dict[str, dict[str, int]] = {}
        excluding: set[str] = set()
        for h in hits:
            term = terms[h.term]
            if term.role == ACTOR:
                h.status = COUNTED
                actor_hits.append(h)
                group = actors.setdefault(term.group, {})
                group[term.text] = group.get(term.text, 0) + 1
            elif term.role == EXCLUSION:
                h.status = EXCLUDING
                excluding.add(term.text)
            else:
                weighted.append(h)
        excluded = sorted(excluding)
        missing = [g for g in self.group_names if g not in actors]
        if missing or excluded:
            # Decided by the actors or an exclusion: the signals cannot change it, so they are
            # not weighed (most stories of a stream stop here). explain shows where they are.
            matches = {"actors": actors, "signals": []}
            if missing:
                matches["missing_groups"] = missing
            if excluded:
                matches["excluded_by"] = excluded
            return TopicScore(self.name, self.rules_version, 0.0, False, matches), hits
        places = _Places(texts, topic.proximity) if self._needs_places else None
        groups_near = self._actors_together(actor_hits, places)

        per_term: dict[int, list[Hit]] = {}
        for h in weighted:
            if len(weighted) > 1 and _inside_longer(h, weighted):
                # "de-escalate" is not an escalation, "sanctions evasion" not two signals.
                h.status = INSIDE
            elif places is not None and not places.near_any(h, actor_hits, "signals"):
                h.status = FAR
            elif self._negated(texts[h.field], h):
                h.status = NEGATED
            else:
                h.status = COUNTED
            per_term.setdefault(h.term, []).append(h)

        signals: list[dict[str, Any]] = []
        total = 0.0
        context = False  # some signal or counter term near the actors, negated or not
        for index in sorted(per_term):
            term = terms[index]
            occurrences = per_term[index]
            counted = [h for h in occurrences if h.status == COUNTED]
            negated = sum(1 for h in occurrences if h.status == NEGATED)
            far = sum(1 for h in occurrences if h.status == FAR)
            inside = sum(1 for h in occurrences if h.status == INSIDE)
            if inside == len(occurrences):
                continue  # only ever part of a longer term: that term speaks for it
            context = context or len(occurrences) > far + inside
            in_title = any(h.field == 0 for h in counted)
            boost = topic.title_boost if in_title else 1.0
            points = term.weight * min(len(counted), term.cap) * boost
            total += points
            entry: dict[str, Any] = {
                "term": term.text,
                "role": term.role,
                "class": term.group,
                "weight": term.weight,
                "count": len(counted),
                "in_title": in_title,
                "points": round(points, 4),
            }
            if negated:
                entry["negated"] = negated
            if far:
                entry["far"] = far
            signals.append(entry)

        relevant = groups_near and (context or not topic.require_signal)
        matches: dict[str, Any] = {"actors": actors, "signals": signals}
        if not groups_near:
            matches["actors_apart"] = True
        score = round(total, 4) if relevant else 0.0
        return TopicScore(self.name, self.rules_version, score, relevant, matches), hits

    def _actors_together(self, actor_hits: list[Hit], places: _Places | None) -> bool:
        """Whether one occurrence of every actor group lies within the proximity window."""
        if places is None or self.topic.proximity.actors == "story" or len(self.group_names) < 2:
            return True
        by_group: dict[str, list[Hit]] = {}
        for h in actor_hits:
            by_group.setdefault(self.terms[h.term].group, []).append(h)
        if len(by_group) < len(self.group_names):
            return False
        first, *others = by_group.values()
        return any(
            all(places.near_any(anchor, hits, "actors") for hits in others) for anchor in first
        )

    def _negated(self, text: str, hit: Hit) -> bool:
        """A negator within the window before (or after) the hit, in the same sentence."""
        window = self.topic.negation.window
        before_words, after_words = self._negators_before, self._negators_after
        # Each side starts with one regex search for any negator nearby; most hits have none.
        if before_words:
            before = text[max(0, hit.start - 30 * window) : hit.start]
            if before_words[2].search(before):
                words = _WORD.findall(before[_last_sentence_end(before) :])[-window:]
                if any(self._is_negator(w, before_words) for w in words):
                    return True
        if after_words:
            after = text[hit.end : hit.end + 30 * window]
            if after_words[2].search(after):
                match = _SENTENCE_END.search(after)
                words = _WORD.findall(after[: match.start()] if match else after)[:window]
                if any(self._is_negator(w, after_words) for w in words):
                    return True
        return False

    @staticmethod
    def _is_negator(word: str, negators: Negators) -> bool:
        exact, prefixes, _ = negators
        return word in exact or (bool(prefixes) and word.startswith(prefixes))


COUNTED, NEGATED, FAR, INSIDE, EXCLUDING = (
    "counted",
    "negated",
    "far from actors",
    "inside a longer term",
    "excluding",
)


def _inside_longer(hit: Hit, others: list[Hit]) -> bool:
    """Whether another weighted term's occurrence covers this one and is longer."""
    length = hit.end - hit.start
    return any(
        o.field == hit.field
        and o.start <= hit.start
        and o.end >= hit.end
        and o.end - o.start > length
        for o in others
    )


# A word, with Turkish suffixes after an apostrophe kept on it (İsrail'in is one word).
_WORD = re.compile(r"\w+(?:'\w+)*")
# Sentence ends in folded text: . ! ? followed by space or the end, but not the dot after a
# single letter ("u.s. treasury", "j. smith") or a short abbreviation; line breaks too.
_SENTENCE_END = re.compile(r"(?<!\b[a-z])(?<!\bmr)(?<!\bdr)(?<!\bst)(?<!\bvs)[.!?]+(?=\s|$)|\n+")


def _last_sentence_end(text: str) -> int:
    end = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
    return end


@dataclass(slots=True)
class Hit:
    """One occurrence of a term: where it is and what scoring made of it."""

    term: int
    field: int  # 0 title, 1 summary
    start: int
    end: int
    status: str = ""


class _Places:
    """Sentence and word positions of hits, for proximity windows (computed once per story)."""

    def __init__(self, texts: tuple[str, str], proximity: Any):
        self.proximity = proximity
        self.sentence_ends = [[m.end() for m in _SENTENCE_END.finditer(t)] for t in texts]
        self.word_starts = [[m.start() for m in _WORD.finditer(t)] for t in texts]

    def _where(self, hit: Hit, window: str | int) -> int:
        if window == "sentence":
            return bisect_right(self.sentence_ends[hit.field], hit.start)
        return bisect_right(self.word_starts[hit.field], hit.start)

    def near_any(self, hit: Hit, others: list[Hit], kind: str) -> bool:
        window = getattr(self.proximity, kind)
        if window == "story":
            return True
        here = self._where(hit, window)
        for other in others:
            if other.field != hit.field:
                continue
            there = self._where(other, window)
            if (window == "sentence" and here == there) or (
                window != "sentence" and abs(here - there) <= window
            ):
                return True
        return False


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


Negators = tuple[frozenset[str], tuple[str, ...], "re.Pattern[str]"]


def _negators(texts: list[str]) -> Negators | None:
    """Folded negator words: exact words, `prefix*` stems, and a regex that finds any of them."""
    if not texts:
        return None
    folded = [fold(t).strip() for t in texts]
    exact = frozenset(t for t in folded if not t.endswith("*"))
    prefixes = tuple(t.rstrip("*") for t in folded if t.endswith("*"))
    alternatives = [re.escape(t) + r"\b" for t in exact] + [re.escape(p) for p in prefixes]
    return exact, prefixes, re.compile(r"\b(?:" + "|".join(alternatives) + ")")


class CompiledRules(Sequence[TopicMatcher]):
    """Every topic's rules, compiled once per cycle, scanned in one pass per story."""

    def __init__(self, matchers: list[TopicMatcher]):
        self.matchers = matchers
        self._scanner = _Scanner(
            [((i, t), term.text) for i, m in enumerate(matchers) for t, term in enumerate(m.terms)]
        )
        # The quick pre-check: a term can only match where its first word (or prefix) occurs
        # as a substring, and `in` costs far less than the regex scan. Per topic, the actor
        # groups with the fewest first words are tried first.
        self._gates: list[list[tuple[TopicScore, tuple[str, ...]]]] = []
        for m in matchers:
            gate = []
            for group in m.group_names:
                stems = {
                    _split_term(t.text)[0] for t in m.terms if t.role == ACTOR and t.group == group
                }
                absent = TopicScore(
                    m.name, m.rules_version, 0.0, False,
                    {"actors": {}, "signals": [], "missing_groups": [group]},
                )  # fmt: skip
                gate.append((absent, tuple(sorted(stems))))
            self._gates.append(sorted(gate, key=lambda entry: len(entry[1])))

    @overload
    def __getitem__(self, index: int) -> TopicMatcher: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[TopicMatcher]: ...
    def __getitem__(self, index: int | slice) -> TopicMatcher | Sequence[TopicMatcher]:
        return self.matchers[index]

    def __len__(self) -> int:
        return len(self.matchers)

    def score_folded(
        self, title: str, summary: str, language: str | None = None
    ) -> list[TopicScore]:
        """Score folded text against every topic: one regex pass over title and summary.

        A topic one of whose actor groups cannot occur in the text (none of its first words is
        even a substring) is decided without the scan; its matches name that group. Most
        stories of a news stream are decided this way for every topic and never scanned.
        """
        text = title + "\n" + summary  # the line break between them ends every term
        decided: list[TopicScore | None] = []
        for m, gate in zip(self.matchers, self._gates, strict=True):
            if language and m.topic.languages and language not in m.topic.languages:
                decided.append(m.explain_hits((title, summary), [], language)[0])
                continue
            decided.append(_first_absent(gate, text))
        if all(result is not None for result in decided):
            return decided  # type: ignore[return-value]
        split = len(title) + 1
        per_topic: list[list[Hit]] = [[] for _ in self.matchers]
        for (topic, term), start, end in self._scanner.find(text):
            if decided[topic] is not None:
                continue
            if start < split:
                per_topic[topic].append(Hit(term, 0, start, end))
            else:
                per_topic[topic].append(Hit(term, 1, start - split, end - split))
        texts = (title, summary)
        return [
            result or m.explain_hits(texts, hits, language)[0]
            for m, hits, result in zip(self.matchers, per_topic, decided, strict=True)
        ]


def _first_absent(gate: list[tuple[TopicScore, tuple[str, ...]]], text: str) -> TopicScore | None:
    """The (shared, read-only) result for the first actor group that cannot occur in text."""
    for absent, stems in gate:
        for stem in stems:
            if stem in text:
                break
        else:
            return absent
    return None


def compile_topics(topics: dict[str, Topic]) -> CompiledRules:
    """Compile every topic once; the rules are reused for all stories of a cycle."""
    return CompiledRules([TopicMatcher(name, topic) for name, topic in topics.items()])


def score_story(
    rules: CompiledRules, title: str, summary: str, language: str | None = None
) -> list[TopicScore]:
    """Score one story against every topic (the text is folded once)."""
    return rules.score_folded(fold(title), fold(summary), language)
