"""Score stories against topic rules: a pure function of folded text and compiled rules.

`compile_topics` compiles every topic's terms once per cycle into one regex over the *first
word* of every term, built as a trie so the regex engine branches one character at a time
instead of trying hundreds of alternatives at every word; a story is scanned once for all
topics. Each first-word hit is resolved in Python against the few terms that start with it
(the rest of a phrase is checked with `str.startswith`), so every occurrence of every term is
found, whatever other terms overlap it.

Term syntax (after folding, see text.fold): whole words; a space-separated phrase; a
trailing `*` for a prefix of the last word (`escalat*`, `machine tool*`, `ihracat*`).
Words written with attached clitics are found too (see `_CLITICS` and `_SUFFIXES`): in
Arabic script after و ف ب ك ل and the article ال (والاحتلال, بإسرائيل, للحرس), with a
Persian or Arabic ending (ایرانی, اسرائیلی‌ها, الإيرانية); in Hebrew after up to three of
ו ה ב ל מ ש כ (בישראל, ומטהרן). A term's occurrence is the word without them.

A story is *relevant* when its focus — what its headline and lead are about — brings every
actor group together (see `TopicMatcher._focus`):
- the headline names every group: relevant, with or without a signal word (the headline
  makes the dyad its subject; the score then says how tense it is);
- else one sentence of the lead (the summary's first `focus.lead_sentences` sentences), with
  the headline's groups, names every group, and a signal or counter term stands in that
  sentence or an *act* signal in the headline (the event the lead goes on to place; a
  threat or talks word in the headline is about the headline's own subject);
- else one later sentence names every group on its own, with a signal or counter in it, under
  a headline that names at least one group (a long article about the topic, not a round-up
  or a story about something else that names the parties in passing).
An exclusion speaks only where it stands: in the headline it vetoes the story; in the lead it
vetoes a headline focus, unless the headline reports an act; elsewhere it rules out only its
own sentence (a passing mention of a hard-negative subject does not veto a story that is
about the topic).

What each occurrence of a signal or counter term counts for:
- nothing if a longer weighted term covers it ("de-escalate" is not also "escalat*");
- nothing if it stands beyond the lead in a sentence that names no actor;
- nothing, but it still marks its sentence as signalled, if a negator stands within the
  negation window before it (or after it: Turkish negates after the verb);
- otherwise its weight. Score = Σ weight × min(count, cap) × (title_boost if in the headline).

The score of a story that is not relevant is 0; its matches are kept so that the decision can
be explained (`explain_hits` returns every occurrence with what was made of it).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import ahocorasick

from tensionwatch.config import LanguageRules, Topic
from tensionwatch.text import fold

ACTOR, SIGNAL, COUNTER, EXCLUSION, NOT_ACTOR, THIRD_PARTY = (
    "actor",
    "signal",
    "counter",
    "exclusion",
    "not an actor",
    "third party",
)

# The version of the matching and scoring code (this module and text.fold). Bump it with any
# change that can change a score, a decision or `matches`: it is part of every rules_version,
# so stored scores say which code made them and `tensionwatch rescore` redoes them.
SCORER_VERSION = 5

# Clitics written onto the front of a word: in Arabic script the conjunctions و ف, the
# prepositions ب ك ل and the article ال (وال, بال, لل = ل + ال, فب…); in Hebrew up to three of
# ו ה ב ל מ ש כ. A term is looked for after them (a term that starts with one of these
# letters is tried whole first: the regex backtracks).
_CLITICS = "(?:[وف]?(?:[بك]?ال|لل|[بكل])|[وف]|[ובהלמשכ]{1,3})"
_CLITIC_LETTERS = "وفبكلاובהלמשכ"
# Endings written onto a word in Arabic script, after folding (ی → ي, ة → ه): Persian plural
# ها / های / هایی, ی (adjective, indefinite, ezafe), ای, یی, ان; Arabic ي / ية (adjective),
# ات / ين / ون (plurals), ه / هم (his / their). A whole-word Arabic-script term also matches
# with one of them attached (ایرانی, الإيرانية). Longest first.
_SUFFIXES = ("هايي", "هاي", "ها", "يه", "اي", "يي", "ان", "ات", "ين", "ون", "هم", "ي", "ه")
_SUFFIX_SET = frozenset(_SUFFIXES)
_SUFFIX_LENGTHS = sorted({len(suffix) for suffix in _SUFFIXES})
_ARABIC_SCRIPT = re.compile("[\u0600-\u06ff]")
_SUFFIX_THEN_END = "(?=(?:" + "|".join(_SUFFIXES) + r")?(?!\w))"


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # as written in config.yaml, shown in explanations
    role: str  # actor / signal / counter / exclusion
    group: str  # actor group name, or the signal class (threat/act)
    weight: float
    cap: int
    language: str | None = None  # from `by_language`: speaks only in stories of this language


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
            for spelling in _spellings(first):
                if is_prefix and not rest:
                    prefix.setdefault(spelling, []).append(_Tail(key, "", True))
                    words[spelling] = True
                else:
                    exact.setdefault(spelling, []).append(_Tail(key, rest, is_prefix))
                    words.setdefault(spelling, False)
        self._exact = exact
        self._prefix = prefix
        self._prefix_lengths = sorted({len(p) for p in prefix})
        self._regex = None
        self._word: re.Pattern[str] | None = None  # one first word at a given position
        if words:
            # The lookahead on the possible first letters lets the engine skip most positions
            # before it tests the word boundary (measured ~15% faster than a bare \b).
            first_letters = {w[0] for w in words}
            clitics = ""
            if any(_ARABIC_SCRIPT.match(w) or "\u05d0" <= w[0] <= "\u05ea" for w in words):
                # A clitic may stand before a term's first letter (the hit is the word alone).
                first_letters |= set(_CLITIC_LETTERS)
                clitics = _CLITICS + "?"
            letters = "".join(sorted(first_letters))
            trie = _trie_pattern(words)
            self._regex = re.compile(f"(?=[{re.escape(letters)}])(?<!\\w){clitics}(?P<w>{trie})")
            if clitics:
                self._word = re.compile(f"(?P<w>{trie})")

    def find(self, folded: str) -> list[tuple[Any, int, int]]:
        """Every occurrence, as (key, start, end)."""
        found: list[tuple[Any, int, int]] = []
        if self._regex is None:
            return found
        for hit in self._regex.finditer(folded):
            start, end = hit.span("w")
            self._resolve(folded, hit.group("w"), start, end, found)
            if self._word is not None and _CLITIC_START.match(folded, hit.start()):
                # The regex read the word one way (with a clitic, or none); the other ways
                # may hold other terms: "המוסד" is the term המוסד, not ה + the first word of
                # "מוסד לביטוח"; "الحرس الثوري" is not ال + the first word of "حرس الثورة".
                for split in _clitic_splits(folded, hit.start(), start):
                    other = self._word.match(folded, split)
                    if other:
                        at, to = other.span("w")
                        self._resolve(folded, other.group("w"), at, to, found, True)
        return found

    def _resolve(
        self,
        folded: str,
        word: str,
        start: int,
        end: int,
        found: list[tuple[Any, int, int]],
        another_reading: bool = False,
    ) -> None:
        """The terms whose first word (or prefix) is `word` at start..end, and whose rest of
        the phrase follows: appended to `found` (once: `another_reading` of a word may find
        what the first found)."""
        exact, prefix, lengths = self._exact, self._prefix, self._prefix_lengths
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
                elif (
                    stop < len(folded)
                    and _is_word(folded[stop])
                    and not _suffix_follows(folded, stop)
                ):
                    continue
            if not another_reading or (tail.key, start, stop) not in found:
                found.append((tail.key, start, stop))
        if _ARABIC_SCRIPT.match(word):
            # The word may also be a one-word term with an ending: the regex read the longest
            # term it could ("ترکیه", Persian for Türkiye), not "تركي" + ه (Arabic: Turkish).
            for length in _SUFFIX_LENGTHS:
                core = word[:-length]
                if core in exact and word[-length:] in _SUFFIX_SET:
                    for tail in exact[core]:
                        if not tail.rest:  # a phrase's first word takes no ending
                            found.append((tail.key, start, start + len(core)))


_CLITIC_START = re.compile(f"[{_CLITIC_LETTERS}]")
_CLITIC = re.compile(_CLITICS)


def _clitic_splits(folded: str, word_start: int, read_at: int) -> list[int]:
    """Where else the word at `word_start` may begin after its clitics than `read_at` (where
    the regex read it): at its start, and after each clitic sequence it starts with."""
    splits = [word_start] if read_at != word_start else []
    for length in (1, 2, 3):
        split = word_start + length
        if split != read_at and _CLITIC.fullmatch(folded, word_start, split):
            splits.append(split)
    return splits


def _spellings(first: str) -> list[str]:
    """How a term's first word may be written: an Arabic word with the article after the
    preposition ل is written لل (الحرس → للحرس)."""
    if first.startswith("ال") and len(first) > 3:
        return [first, "لل" + first[2:]]
    return [first]


def _suffix_follows(folded: str, at: int) -> bool:
    """Whether the word that goes on at `at` (after an Arabic-script letter) is one of
    `_SUFFIXES` and then ends."""
    if not _ARABIC_SCRIPT.match(folded[at - 1]):
        return False
    end = at
    while end < len(folded) and _is_word(folded[end]):
        end += 1
    return folded[at:end] in _SUFFIXES


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

    def emit(node: dict[str, Any], last: str) -> str:
        branches = [re.escape(c) + emit(child, c) for c, child in node.items() if len(c) == 1]
        if node.get("\0prefix"):
            branches.append(r"\w*")
        if node.get("\0exact"):
            # An Arabic-script word may end in a suffix: the hit stops before it.
            branches.append(_SUFFIX_THEN_END if _ARABIC_SCRIPT.match(last) else r"(?!\w)")
        if len(branches) == 1:
            return branches[0]
        return "(?:" + "|".join(branches) + ")"

    return emit(trie, "")


class TopicMatcher:
    """One topic's rules, compiled once per cycle; `score(title, summary)` is pure."""

    def __init__(self, name: str, topic: Topic):
        self.name = name
        self.topic = topic
        self.rules_version = topic.rules_version()
        self.group_names = list(topic.actors)
        self.party_groups = topic.party_groups
        self._all_groups = frozenset(self.group_names)
        self._party_set = frozenset(self.party_groups)
        self._list_words = frozenset(fold(w).strip() for w in topic.focus.list_words)
        self._pair_words = frozenset(fold(w).strip() for w in topic.focus.pair_words)
        terms = _terms(topic, topic, None)
        for language, rules in topic.by_language.items():
            terms += _terms(topic, rules, language)
        self.terms = terms

        # This topic's own scanner serves `explain` (CompiledRules scans for all topics at
        # once): compiled when first asked for, not by every worker of every cycle.
        self._scanner: _Scanner | None = None
        # Negators and commentary words: the topic's, and each language's added for its stories.
        self._negators = {None: (_negators(topic.negation.before), _negators(topic.negation.after))}
        self._commentary_words = {None: frozenset(fold(w).strip() for w in topic.commentary.words)}
        for language, rules in topic.by_language.items():
            self._negators[language] = (
                _negators([*topic.negation.before, *rules.negation.before]),
                _negators([*topic.negation.after, *rules.negation.after]),
            )
            self._commentary_words[language] = self._commentary_words[None] | {
                fold(w).strip() for w in rules.commentary
            }

    def find(self, folded: str) -> list[tuple[int, int, int]]:
        """Every term occurrence in folded text, as (term index, start, end)."""
        if self._scanner is None:
            self._scanner = _Scanner([(i, term.text) for i, term in enumerate(self.terms)])
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
        terms = self.terms
        hits = [
            Hit(t, field, a, b)
            for field in (0, 1)
            for t, a, b in self.find(texts[field])
            # Terms of another language's rules say nothing about this story.
            if language is None or terms[t].language in (None, language)
        ]
        return self.explain_hits(texts, hits, language)

    def explain_hits(
        self, texts: tuple[str, str], hits: list[Hit], language: str | None = None
    ) -> tuple[TopicScore, list[Hit]]:
        """Score from the occurrences already found in (folded title, folded summary): those
        of the topic's own terms and of the story language's `by_language` terms (the finders,
        explain_folded and CompiledRules.score_folded, leave other languages' out)."""
        topic = self.topic
        if language and topic.languages and language not in topic.languages:
            matches = {"actors": {}, "signals": [], "skipped": f"language {language}"}
            return TopicScore(self.name, self.rules_version, 0.0, False, matches), []
        terms = self.terms
        if not hits:  # most stories of a news stream: nothing more to work out
            matches = {"actors": {}, "signals": [], "missing_groups": self.group_names}
            return TopicScore(self.name, self.rules_version, 0.0, False, matches), hits
        negators = self._negators.get(language, self._negators[None])
        # "Both named" is the plain baseline: any mention of each party counts for it.
        named = {terms[h.term].group for h in hits if terms[h.term].role == ACTOR}
        parties_named = all(p in named for p in self.party_groups)
        labels = [h for h in hits if terms[h.term].role == NOT_ACTOR]
        actor_hits = [h for h in hits if terms[h.term].role == ACTOR]
        actors: dict[str, dict[str, int]] = {}
        for h in actor_hits:
            if _inside_longer(h, labels) or _inside_longer(h, actor_hits):
                # "Israel" in "the Israel-Hamas war"; "Kudüs" (Jerusalem) in "Kudüs Gücü"
                # (the Quds Force): the longer phrase says what is named.
                h.status = INSIDE
                continue
            h.status = COUNTED
            term = terms[h.term]
            group = actors.setdefault(term.group, {})
            group[term.text] = group.get(term.text, 0) + 1
        missing = [g for g in self.group_names if g not in actors]
        if missing:
            # Decided by the actors: nothing else can change it, so nothing is weighed (most
            # stories of a stream stop here). explain shows where the other terms are.
            matches: dict[str, Any] = {"actors": actors, "signals": [], "missing_groups": missing}
            if parties_named:
                matches["parties_named"] = True
            return TopicScore(self.name, self.rules_version, 0.0, False, matches), hits

        # Which sentence each occurrence stands in: 0 is the headline, 1… the summary's.
        summary_ends = [m.end() for m in _SENTENCE_END.finditer(texts[1])]
        groups_at: dict[int, set[str]] = {}
        excluded_at: dict[int, set[str]] = {}
        weighted: list[Hit] = []
        for h in hits:
            h.sentence = 0 if h.field == 0 else 1 + bisect_right(summary_ends, h.start)
            term = terms[h.term]
            if term.role == ACTOR:
                if h.status == COUNTED:
                    groups_at.setdefault(h.sentence, set()).add(term.group)
            elif term.role == EXCLUSION:
                excluded_at.setdefault(h.sentence, set()).add(term.text)
            elif term.role not in (NOT_ACTOR, THIRD_PARTY):
                weighted.append(h)
        third = [h for h in hits if terms[h.term].role == THIRD_PARTY]
        if third:
            self._set_listed_aside(texts, actor_hits, third, groups_at)

        lead = topic.focus.lead_sentences
        signal_at: set[int] = set()  # sentences with a signal or counter (negated or not)
        act_in_headline = False
        per_term: dict[int, list[Hit]] = {}
        for h in weighted:
            if len(weighted) > 1 and _inside_longer(h, weighted):
                # "de-escalate" is not an escalation, "sanctions evasion" not two signals.
                h.status = INSIDE
            elif h.sentence > lead and h.sentence not in groups_at:
                h.status = FAR  # beyond the lead, in a sentence that names no actor
            else:
                h.status = NEGATED if self._negated(texts[h.field], h, negators) else COUNTED
                signal_at.add(h.sentence)
                if h.sentence == 0 and h.status == COUNTED and terms[h.term].group == "act":
                    act_in_headline = True
            per_term.setdefault(h.term, []).append(h)

        if act_in_headline:
            # An act in the headline (a strike, a seizure) is the event the lead goes on to
            # place: it signals every lead sentence. A threat or talks word in the headline
            # is about the headline's own subject, and signals only the headline.
            signal_at.update(range(1, lead + 1))
        joined = self._joined_in_headline(texts[0], actor_hits)
        apart = self._parties_apart(texts[1], actor_hits, groups_at)
        for n in apart:
            groups_at[n] = groups_at[n] - self._party_set  # they name each other in passing
        focus, why_not = self._focus(groups_at, excluded_at, signal_at, joined, act_in_headline)
        relevant = focus is not None
        if relevant:
            # The score measures the focus: the headline, the lead and the sentence the story
            # is about. Other sentences of a long body that name an actor (background, the
            # history of the conflict) would make every long article read as tense.
            keep = set(range(lead + 1)) | {_focus_sentence(focus)}
            for h in weighted:
                if h.status in (COUNTED, NEGATED) and h.sentence not in keep:
                    h.status = FAR
        deciding = why_not.pop("excluding", set())
        for h in hits:
            if terms[h.term].role == EXCLUSION:
                h.status = EXCLUDING if h.sentence in deciding else ASIDE

        signals: list[dict[str, Any]] = []
        total = 0.0
        for index in sorted(per_term):
            term = terms[index]
            occurrences = per_term[index]
            counted = [h for h in occurrences if h.status == COUNTED]
            negated = sum(1 for h in occurrences if h.status == NEGATED)
            far = sum(1 for h in occurrences if h.status == FAR)
            inside = sum(1 for h in occurrences if h.status == INSIDE)
            if inside == len(occurrences):
                continue  # only ever part of a longer term: that term speaks for it
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

        matches = {"actors": actors, "signals": signals}
        if parties_named:
            matches["parties_named"] = True
        if focus is not None:
            matches["focus"] = focus
        matches.update(why_not)
        words = self._commentary_words.get(language, self._commentary_words[None])
        commentary = self._commentary(texts[0], words) if relevant else None
        if commentary:
            # An analysis, an explainer or a question discusses the conflict; it reports no
            # new event, so its words count for less (the story stays relevant).
            matches["commentary"] = commentary
            total *= topic.commentary.factor
        score = round(total, 4) if relevant else 0.0
        return TopicScore(self.name, self.rules_version, score, relevant, matches), hits

    def _focus(
        self,
        groups_at: dict[int, set[str]],
        excluded_at: dict[int, set[str]],
        signal_at: set[int],
        joined: bool,
        act_in_headline: bool,
    ) -> tuple[str | None, dict[str, Any]]:
        """Where the story is about every actor group together, or why it is not.

        In order:
        - the headline names every group, with a signal in the headline or the lead, or with
          the parties joined in the headline ("Iran accuses Israel": no signal word is needed
          where the headline makes the dyad its subject);
        - a sentence of the lead does, the headline helping, with a signal in that sentence
          (or an act in the headline);
        - a later sentence does on its own, with a signal in it, under a headline that names
          one of the groups.
        An exclusion speaks only where it stands: in the headline it vetoes the story; in the
        lead it vetoes a headline focus unless the headline reports an act (then the story is
        about the act, and the lead's "crude" or "football" is background); elsewhere it rules
        out its own sentence.

        Returns the focus ("headline", "lead sentence N", "body sentence N"), or None and why:
        `excluded_by`, `no_signal`, `actors_apart`; `excluding` holds the sentences whose
        exclusions decided.
        """
        every = self._all_groups
        lead = self.topic.focus.lead_sentences
        headline = groups_at.get(0, set())
        if 0 in excluded_at:
            return None, {"excluded_by": sorted(excluded_at[0]), "excluding": {0}}
        if headline >= every:
            in_lead = {n for n in excluded_at if n <= lead}
            if in_lead and not act_in_headline:
                terms = sorted(set().union(*(excluded_at[n] for n in in_lead)))
                return None, {"excluded_by": terms, "excluding": in_lead}
            if joined or 0 in signal_at or any(0 < n <= lead for n in signal_at):
                return "headline", {}
            return None, {"no_signal": True}
        excluded: set[int] = set()
        no_signal = False
        for n in sorted(groups_at):
            if n == 0:
                continue
            if n <= lead:
                together = groups_at[n] | headline >= every
            else:
                # Beyond the lead only under a headline that names an actor: otherwise the
                # story is a round-up, or about something else that names them in passing.
                together = self.topic.focus.body and bool(headline) and groups_at[n] >= every
            if not together:
                continue
            if n in excluded_at:
                excluded.add(n)
            elif n not in signal_at:
                no_signal = True
            else:
                return f"{'lead' if n <= lead else 'body'} sentence {n}", {}
        why: dict[str, Any] = {}
        if excluded:
            terms = sorted(set().union(*(excluded_at[n] for n in excluded)))
            why.update({"excluded_by": terms, "excluding": excluded})
        if no_signal:
            why["no_signal"] = True
        if not why:
            why["actors_apart"] = True
        return None, why

    def _commentary(self, headline: str, words: frozenset[str]) -> str | None:
        """The word that marks a headline as commentary rather than a report, if any: a
        commentary word opening the headline or a part of it after a colon, a bar or a dash
        ("Analysis: …", "Explainer | …", "Bearings and chips: why …"), or a question mark
        ending it ("Will the shadow war go open?")."""
        commentary = self.topic.commentary
        if commentary.questions and headline.rstrip().endswith("?"):
            return "?"
        for part in _HEADLINE_PARTS.split(headline):
            first = _WORD.search(part)
            if first and first.group() in words:
                return first.group()
        return None

    def _set_listed_aside(
        self,
        texts: tuple[str, str],
        actor_hits: list[Hit],
        third: list[Hit],
        groups_at: dict[int, set[str]],
    ) -> None:
        """A party named in a list with a third party ("accuses the US and Israel", "Israel,
        Jordan and Egypt", "the Israeli-Palestinian conflict", "a Saudi-Iran deal") is one of
        several, not a side facing the other party. In a summary sentence such a mention does
        not count for its party; in the headline, only when every party is named that way
        ("Israel, Russia, China, Iran: the world in conflict", but not "Iran warns US and
        Israel", nor "drone engines for Iran and Russia" with Israel only in the lead)."""
        listed: dict[int, list[Hit]] = {}
        for h in actor_hits:
            if (
                h.status == COUNTED
                and self.terms[h.term].group in self._party_set
                and any(_listed_with(texts[h.field], h, o) for o in third if o.field == h.field)
            ):
                listed.setdefault(h.sentence, []).append(h)
        for n, aside in listed.items():
            set_aside = {id(h) for h in aside}
            named = [
                h
                for h in actor_hits
                if h.sentence == n and h.status == COUNTED and id(h) not in set_aside
            ]
            alone = {self.terms[h.term].group for h in named}
            if n == 0 and (alone & self._party_set or len(self._party_set & groups_at[0]) < 2):
                # One party stands on its own in the headline, facing the other; or the
                # headline names one party, whose story the lead goes on to tell.
                continue
            for h in aside:
                h.status = LISTED
            groups_at[n] = {self.terms[h.term].group for h in named}

    def _parties_apart(
        self, summary: str, actor_hits: list[Hit], groups_at: dict[int, set[str]]
    ) -> list[int]:
        """Summary sentences that name every party, but no two of them within
        `focus.sentence_window` words: "…sentenced in Iran after being accused of organising
        a bomb attack in 2008 and collaborating with the US and Israel" names Israel in
        passing. Such a sentence counts for neither party."""
        window = self.topic.focus.sentence_window
        candidates = [n for n, groups in groups_at.items() if n > 0 and groups >= self._party_set]
        if not window or not candidates or len(self._party_set) < 2:
            return []
        word_starts = [m.start() for m in _WORD.finditer(summary)]
        apart = []
        for n in candidates:
            places = sorted(
                (bisect_right(word_starts, h.start), self.terms[h.term].group)
                for h in actor_hits
                if h.sentence == n
                and h.status == COUNTED
                and self.terms[h.term].group in self._party_set
            )
            near = any(
                b[0] - a[0] <= window
                for a, b in zip(places, places[1:], strict=False)
                if a[1] != b[1]
            )
            if not near:
                apart.append(n)
        return apart

    def _joined_in_headline(self, headline: str, actor_hits: list[Hit]) -> bool:
        """Whether the headline joins two parties directly: at most `focus.headline_gap`
        words between them, none a list word, no comma or semicolon ("Iran accuses Israel",
        not "visitors from Iran and Israel")."""
        gap = self.topic.focus.headline_gap
        if not gap or len(self.party_groups) < 2:
            return False
        found = [
            (h.start, h.end, self.terms[h.term].group)
            for h in actor_hits
            if h.field == 0 and h.status == COUNTED and self.terms[h.term].group in self._party_set
        ]
        found.sort()
        for (first, end, group), (start, last, other) in zip(found, found[1:], strict=False):
            if group == other:
                continue
            between = headline[end:start]
            words = _WORD.findall(between)
            if len(words) > gap or "," in between or ";" in between:
                continue
            if not any(w in self._list_words for w in words):
                return True
            # "between Tehran and Tel Aviv", "İran ile İsrail arasında": a pair, not a list
            before = _WORD.findall(headline[:first])[-1:]
            after = _WORD.findall(headline[last:])[:1]
            if any(w in self._pair_words for w in before + after):
                return True
        return False

    def _negated(
        self, text: str, hit: Hit, negators: tuple[Negators | None, Negators | None]
    ) -> bool:
        """A negator within the window before (or after) the hit, in the same sentence."""
        window = self.topic.negation.window
        before_words, after_words = negators
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


def _terms(topic: Topic, rules: Topic | LanguageRules, language: str | None) -> list[Term]:
    """The terms of a topic's lists, or of one language's (`by_language`), in one order."""
    terms: list[Term] = []
    for group, texts in rules.actors.items():
        terms += [Term(t, ACTOR, group, 0.0, 1, language) for t in texts]
    for s in rules.signals:
        terms.append(Term(s.term, SIGNAL, s.kind, s.weight, s.cap or topic.max_count, language))
    for c in rules.counters:
        cap = c.cap or topic.max_count
        terms.append(Term(c.term, COUNTER, "counter", c.weight, cap, language))
    terms += [Term(t, EXCLUSION, "exclusion", 0.0, 1, language) for t in rules.exclusions]
    terms += [Term(t, NOT_ACTOR, "not an actor", 0.0, 1, language) for t in rules.not_actors]
    terms += [Term(t, THIRD_PARTY, "third party", 0.0, 1, language) for t in rules.third_parties]
    return terms


COUNTED, NEGATED, FAR, INSIDE, EXCLUDING, ASIDE, LISTED = (
    "counted",
    "negated",
    "away from the focus",  # beyond the lead, in a sentence the story is not about
    "inside a longer term",
    "excluding",
    "not where the story is about the topic",  # an exclusion that did not decide
    "named in a list with a third party",
)

# What may stand between two names of a list: "the US and Israel", "Israel, Jordan and Egypt",
# "Israel-Palestine" (the dash folds to a space), "ABD'nin ve İsrail'in", "U.S.-Israeli",
# "США и Израиль", "آمریکا و اسرائیل"; Arabic و / ال and Hebrew ו / ה written onto the second
# name ("السعودية وإيران", "ארה\"ב והאיראנים").
_LIST_GAP = re.compile(
    r"(?:'\w+)?\.?\s*(?:[,&/]\s*)?(?:(?:and|or|nor|ve|ile|veya|и|или|و|يا|او|או)\s+)?"
    r"(?:the\s+)?(?:[وו]?(?:ال|ה)?)"
)


def _listed_with(text: str, hit: Hit, other: Hit) -> bool:
    """Whether `hit` and `other` stand side by side as names of one list."""
    if other.end <= hit.start:
        gap = text[other.end : hit.start]
    elif hit.end <= other.start:
        gap = text[hit.end : other.start]
    else:
        return False
    return _LIST_GAP.fullmatch(gap) is not None


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
# Sentence ends in folded text: . ! ? followed by space or the end (Arabic ؟ and ۔ are folded
# to ? and .), but not the dot after a single letter of any script ("u.s. treasury",
# "j. smith", "в 2024 г. в Москве") or a short abbreviation; line breaks too. The lookahead
# first lets the engine pass most positions before it tries the lookbehinds (3.5x faster).
_SENTENCE_END = re.compile(
    r"(?=[.!?])(?<!\b[^\W\d_])(?<!\bmr)(?<!\bdr)(?<!\bst)(?<!\bvs)[.!?]+(?=\s|$)|\n+"
)


# Where a headline's parts meet: "Analysis: …", "ANALİZ | …", "Explainer — …".
_HEADLINE_PARTS = re.compile(r"[:|]|\s[-–—]\s")


def _focus_sentence(focus: str) -> int:
    """The sentence a focus names: 0 for the headline, N for "lead sentence N"."""
    return 0 if focus == "headline" else int(focus.rsplit(" ", 1)[1])


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
    sentence: int = -1  # 0 the headline, 1… the summary's sentences (set when weighed)


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
        # The quick pre-check: a term can only match where its text (or prefix) occurs
        # as a substring, and `in` costs far less than the regex scan. Per topic, the party
        # groups with the fewest first words are tried first. Only the parties are checked: a
        # story that names them but lacks another group is a near miss, and saying so needs
        # the scan (a substring is no proof that a party is named).
        # Per story language: the terms of other languages' rules cannot name a party in it.
        self._gates: dict[str | None, _Gate] = {}
        self._term_languages = [[t.language for t in m.terms] for m in matchers]

    def _gate(self, language: str | None) -> _Gate:
        gate = self._gates.get(language)
        if gate is None:
            gate = self._gates[language] = _Gate(self.matchers, language)
        return gate

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
        decided = self._gate(language).absent(text)
        if None not in decided:
            return decided  # type: ignore[return-value]
        split = len(title) + 1
        per_topic: list[list[Hit]] = [[] for _ in self.matchers]
        languages = self._term_languages
        for (topic, term), start, end in self._scanner.find(text):
            if decided[topic] is not None:
                continue
            other = languages[topic][term]
            if other is not None and language is not None and other != language:
                continue  # a word of another language's rules (Persian in Arabic text)
            if start < split:
                per_topic[topic].append(Hit(term, 0, start, end))
            else:
                per_topic[topic].append(Hit(term, 1, start - split, end - split))
        texts = (title, summary)
        return [
            result or m.explain_hits(texts, hits, language)[0]
            for m, hits, result in zip(self.matchers, per_topic, decided, strict=True)
        ]


class _Gate:
    """The quick pre-check of one story language: which topics have a party group none of
    whose words occurs in the text, even as a substring. One Aho-Corasick pass finds every
    party word of every topic at once; each (topic, party group) is a bit of a mask."""

    def __init__(self, matchers: list[TopicMatcher], language: str | None):
        self._absent: list[list[tuple[int, TopicScore]]] = []
        # A topic without rules for this language: its result for every story (not scored).
        self._skipped: list[TopicScore | None] = []
        masks: dict[str, int] = {}
        bit = 1
        for m in matchers:
            languages = m.topic.languages
            skips = bool(language and languages and language not in languages)
            self._skipped.append(m.explain_hits(("", ""), [], language)[0] if skips else None)
            groups = []
            for group in m.party_groups:
                words = 0
                # A phrase occurs whole where it occurs: its whole text is what to look for
                # ("שר הביטחון", not "שר", which half the words of Hebrew contain).
                for t in m.terms:
                    if t.role != ACTOR or t.group != group:
                        continue
                    if t.language is not None and language is not None and t.language != language:
                        continue  # another language's word names nobody in this story
                    first, rest, _ = _split_term(t.text)
                    for spelling in _spellings(first):
                        masks[spelling + rest] = masks.get(spelling + rest, 0) | bit
                        words += 1
                absent = TopicScore(
                    m.name, m.rules_version, 0.0, False,
                    {"actors": {}, "signals": [], "missing_groups": [group]},
                )  # fmt: skip
                groups.append((words, bit, absent))
                bit <<= 1
            # The group with the fewest words is named first when several are missing.
            self._absent.append(
                [(b, absent) for _, b, absent in sorted(groups, key=lambda g: g[0])]
            )
        self._all = bit - 1
        self._automaton = ahocorasick.Automaton()
        for word, mask in masks.items():
            self._automaton.add_word(word, mask)
        self._automaton.make_automaton()

    def absent(self, text: str) -> list[TopicScore | None]:
        """Per topic: the (shared, read-only) result for its first party group none of whose
        words occurs in the text, or None when each occurs (the story must be scanned)."""
        present = 0
        for _, mask in self._automaton.iter(text):
            present |= mask
            if present == self._all:
                break
        decided: list[TopicScore | None] = []
        for groups, skipped in zip(self._absent, self._skipped, strict=True):
            result = skipped
            if result is None:
                for bit, absent in groups:
                    if not present & bit:
                        result = absent
                        break
            decided.append(result)
        return decided


def compile_topics(topics: dict[str, Topic]) -> CompiledRules:
    """Compile every topic once; the rules are reused for all stories of a cycle."""
    return CompiledRules([TopicMatcher(name, topic) for name, topic in topics.items()])


def score_story(
    rules: CompiledRules, title: str, summary: str, language: str | None = None
) -> list[TopicScore]:
    """Score one story against every topic (the text is folded once)."""
    return rules.score_folded(fold(title), fold(summary), language)
