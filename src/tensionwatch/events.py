"""Group copies of one story into events: a pure function of titles, feeds and times.

The same wire story carried by several outlets — other links, lightly edited headlines — is one
event reported by N outlets; counting every copy (GDELT's best-known flaw) makes one story
look like a wave. Two stories are copies when, within `window` of each other:
- they come from different feeds (a feed that repeats a headline — "Live: day 325 of the
  war" — is running a series, not copying itself);
- their headlines share at least `threshold` of their words (Jaccard similarity of the sets
  of folded words, stop words and an outlet's " - Site Name" suffix left out), with at least
  `min_shared` words in common;
- no number differs between them ("day 325" and "day 324" are two days).

A new story joins the event of its most similar earlier copy; a story with no copy starts its
own event, whose id is its own story id. Grouping is incremental: a cycle groups its new
stories against the stories of the window around them, never the whole history.

An inverted index from words to stories keeps this linear in practice: only stories that
share a word that is not common in the window (on more than MAX_POSTING of its stored
headlines) are compared. The store keeps each story's words and asks DuckDB for just those
stories of the window, so a cycle does not fold every headline of the last days again.
(MinHash, as in the `datasketch` library, pays off at millions of items; a cycle compares
hundreds of new titles with a few days of stories, and an exact Jaccard is simpler to read
and to explain.)
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tensionwatch.text import fold

# Words that say nothing about which story it is (English and Turkish).
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "and",
        "or",
        "as",
        "by",
        "with",
        "from",
        "into",
        "over",
        "after",
        "before",
        "about",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "has",
        "have",
        "had",
        "will",
        "would",
        "can",
        "could",
        "may",
        "might",
        "its",
        "it",
        "this",
        "that",
        "these",
        "those",
        "his",
        "her",
        "their",
        "they",
        "he",
        "she",
        "we",
        "you",
        "says",
        "say",
        "said",
        "new",
        "live",
        "latest",
        "update",
        "updates",
        "news",
        "video",
        "watch",
        "ve",
        "ile",
        "bir",
        "bu",
        "da",
        "de",
        "icin",
        "gibi",
        "olarak",
        "sonra",
        "dedi",
    ]
)
_WORD = re.compile(r"\w+")
MAX_POSTING = 200
# An outlet's name after the headline: "… - BBC News", "… | Reuters", "… — Al Jazeera".
_SUFFIX = re.compile(r"\s[|–—-]\s[^|–—-]{1,40}$")


@dataclass(frozen=True, slots=True)
class StoryRef:
    """What grouping needs of a story; `event_id` is set for stories already grouped."""

    story_id: str
    feed_id: str
    title: str
    event_at: datetime
    event_id: str | None = None
    words: frozenset[str] | None = None  # title_words(title), when already known


@dataclass(frozen=True, slots=True)
class Grouping:
    story_id: str
    event_id: str
    similarity: float | None  # to the copy it joined; None for the first story of an event


def title_words(title: str) -> frozenset[str]:
    """The words that identify a headline: folded, without stop words or an outlet suffix."""
    folded = fold(title)
    if len(folded) > 40:
        folded = _SUFFIX.sub("", folded)
    return frozenset(w for w in _WORD.findall(folded) if len(w) > 1 and w not in STOP_WORDS)


def _words_of(story: StoryRef) -> frozenset[str]:
    return title_words(story.title) if story.words is None else story.words


def _numbers(words: frozenset[str]) -> frozenset[str]:
    return frozenset(w for w in words if any(c.isdigit() for c in w))


def group_events(
    new: Iterable[StoryRef],
    recent: Iterable[StoryRef],
    window: timedelta,
    threshold: float = 0.5,
    min_shared: int = 3,
    common: Iterable[str] | None = None,
) -> list[Grouping]:
    """The event of every new story, against the recent (already grouped) stories and the
    new stories before it in time. `common`: the words on more than MAX_POSTING stored
    headlines of the window, when `recent` holds only the stories that share a rarer word
    with a new one (else counted in `recent`)."""
    recent = [(story, _words_of(story)) for story in recent]
    if common is None:
        counts = Counter(word for _, words in recent for word in words)
        common = {word for word, n in counts.items() if n > MAX_POSTING}
    common = frozenset(common)
    index: dict[str, list[int]] = defaultdict(list)
    # Each story with its words and the numbers among them, worked out once: a cold cycle
    # compares 25,000 headlines with hundreds of candidates each (bench/prefect_cost.py).
    known: list[tuple[StoryRef, frozenset[str], frozenset[str], str]] = []

    def add(story: StoryRef, words: frozenset[str], event_id: str) -> None:
        for word in words:
            index[word].append(len(known))
        known.append((story, words, _numbers(words), event_id))

    for story, words in recent:
        add(story, words, story.event_id or story.story_id)
    result = []
    for story in sorted(new, key=lambda s: (s.event_at, s.story_id)):
        words = _words_of(story)
        numbers = _numbers(words)
        # Candidates come from the words that tell stories apart: a word on more than
        # MAX_POSTING headlines of the window ("iran", "war") finds no copy a rarer word of
        # the headline would not find, and scanning its list for every story is quadratic.
        candidates = {
            i
            for word in words - common
            if len(posting := index.get(word, ())) <= MAX_POSTING
            for i in posting
        }
        best, best_similarity = None, 0.0
        for i in candidates:
            other, other_words, other_numbers, event_id = known[i]
            count = len(words & other_words)
            if count < min_shared:
                continue
            if other.feed_id == story.feed_id or abs(other.event_at - story.event_at) > window:
                continue
            if numbers != other_numbers:
                continue
            similarity = count / len(words | other_words)
            if similarity > best_similarity or (
                similarity == best_similarity and best is not None and event_id < best
            ):
                best, best_similarity = event_id, similarity
        if best is not None and best_similarity >= threshold:
            result.append(Grouping(story.story_id, best, round(best_similarity, 4)))
            add(story, words, best)
        else:
            result.append(Grouping(story.story_id, story.story_id, None))
            add(story, words, story.story_id)
    return result
