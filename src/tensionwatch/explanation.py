"""Explain a score: which groups and terms matched, where, with what weight, what was
negated, too far from the actors or excluded, and the resulting score.

The breakdown is recomputed by the same function that scores stories (`explain_folded`), so
what is printed is exactly what the rules do; for a stored story the stored score is shown
beside it, and a rules version that differs from the current one is pointed out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from tensionwatch.score import (
    ACTOR,
    COUNTER,
    EXCLUDING,
    EXCLUSION,
    FAR,
    INSIDE,
    LISTED,
    NEGATED,
    NOT_ACTOR,
    THIRD_PARTY,
    Hit,
    TopicMatcher,
)
from tensionwatch.text import fold_with_offsets, strip_controls


def plain(text: object) -> Text:
    """Text from a feed or a file, shown as it is: never read as markup, no control codes."""
    return Text(strip_controls(str(text)))


class _Original:
    """A title or summary as the feed wrote it, with the way back from its folded form: the
    matcher finds terms in folded text (text.fold), explain shows what was written there, in
    its own script ("بإسرائيل", "Израиля", not the folded "باسراييل", "израиля")."""

    def __init__(self, text: str):
        self.folded, origins = fold_with_offsets(text)
        # Without a way back (rare: see fold_with_offsets), the folded text is shown.
        self.text = text if origins is not None else self.folded
        self._origins = origins if origins is not None else list(range(len(self.folded) + 1))

    def span(self, hit: Hit) -> tuple[int, int]:
        # The end is where the next folded character came from: marks dropped by folding
        # (a haraka, niqqud) after the word's last letter stay with the word.
        return self._origins[hit.start], self._origins[hit.end]

    def word(self, hit: Hit) -> str:
        start, end = self.span(hit)
        return self.text[start:end]

    def snippet(self, hit: Hit, width: int = 32) -> Text:
        start, end = self.span(hit)
        text = self.text
        left = max(0, start - width)
        right = min(len(text), end + width)
        return plain(
            ("…" if left else "")
            + text[left:start]
            + "«"
            + text[start:end]
            + "»"
            + text[end:right]
            + ("…" if right < len(text) else "")
        )


def explain_story(
    console: Console,
    matchers: Sequence[TopicMatcher],
    title: str,
    summary: str,
    language: str | None = None,
    stored: dict[str, list[dict[str, Any]]] | None = None,
) -> None:
    """Print the breakdown of one story for every topic."""
    originals = (_Original(title), _Original(summary))
    texts = (originals[0].folded, originals[1].folded)
    for matcher in matchers:
        score, hits = matcher.explain_folded(texts[0], texts[1], language)
        head = Text.assemble(
            (f"{matcher.name}", "bold"),
            plain(f" — {matcher.topic.title} · rules {matcher.rules_version} · "),
            (
                "relevant" if score.relevant else "not relevant",
                "green" if score.relevant else "red",
            ),
            f" · score {score.score:g}",
        )
        console.print(head)
        for row in stored.get(matcher.name, []) if stored else []:
            same = row["rules_version"] == matcher.rules_version
            console.print(
                plain(
                    f"  stored: score {row['score']:g}, "
                    f"{'relevant' if row['relevant'] else 'not relevant'}"
                    f" under rules {row['rules_version']}"
                    + (
                        ""
                        if same
                        else " (not the current rules; `tensionwatch rescore` updates it)"
                    )
                ),
                highlight=False,
            )
        if "skipped" in score.matches:
            console.print(
                plain(f"  skipped: {score.matches['skipped']} is not in the topic's languages")
            )
            continue
        terms = matcher.terms
        for group in matcher.group_names:
            found = [
                h for h in hits if terms[h.term].role == ACTOR and terms[h.term].group == group
            ]
            where = ", ".join(
                f"{terms[h.term].text} ({_place(h)}"
                + (", inside a longer phrase: not counted" if h.status == INSIDE else "")
                + (", in a list with a third party: not counted" if h.status == LISTED else "")
                + f") «{originals[h.field].word(h)}»"
                for h in found
            )
            console.print(
                Text.assemble(
                    plain(f"  actor group {group}: "),
                    plain(where) if where else ("no match", "red"),
                ),
                highlight=False,
            )
        focus = score.matches.get("focus")
        if focus:
            console.print(Text.assemble(("  focus: ", "green"), focus), highlight=False)
        elif score.matches.get("no_signal"):
            console.print(
                Text.assemble(
                    ("  no signal where the actors meet", "red"),
                    " (the headline, or the lead sentence that names them)",
                )
            )
        elif score.matches.get("actors_apart"):
            console.print(
                Text.assemble(
                    ("  actors not together", "red"),
                    " in the headline, a lead sentence, or a later sentence under a headline"
                    " that names one of them",
                )
            )
        for h in hits:
            term = terms[h.term]
            if term.role in (ACTOR, EXCLUSION, NOT_ACTOR, THIRD_PARTY):
                continue
            status = {
                NEGATED: ("negated ", "yellow"),
                FAR: ("not counted: beyond the lead, outside the story's focus ", "yellow"),
                INSIDE: ("inside a longer term ", "dim"),
            }.get(h.status, "")
            kind = "counter" if term.role == COUNTER else f"signal/{term.group}"
            console.print(
                Text.assemble(
                    plain(f"  {kind} {term.text} ({_place(h)}) weight {term.weight:g} "),
                    status,
                ),
                originals[h.field].snippet(h),
                highlight=False,
            )
        for entry in score.matches["signals"]:
            if entry["points"]:
                boost = " × title boost" if entry["in_title"] else ""
                capped = min(entry["count"], terms_cap(matcher, entry["term"]))
                console.print(
                    plain(
                        f"    = {entry['term']}: {entry['weight']:g} × {capped}{boost} → "
                        f"{entry['points']:+g}"
                    ),
                    highlight=False,
                )
        commentary = score.matches.get("commentary")
        if commentary:
            console.print(
                plain(
                    f"  commentary ({commentary!r} in the headline): score × "
                    f"{matcher.topic.commentary.factor:g}"
                ),
                highlight=False,
            )
        for h in hits:
            role = terms[h.term].role
            if role == EXCLUSION and h.status == EXCLUDING:
                label = ("  excluded by", "red")
            elif role == EXCLUSION:
                label = ("  exclusion not counted (not where the story is about the topic):", "dim")
            elif role == NOT_ACTOR:
                label = ("  not an actor:", "dim")
            else:
                continue
            console.print(
                Text.assemble(label, plain(f" {terms[h.term].text} ({_place(h)}) ")),
                originals[h.field].snippet(h),
                highlight=False,
            )
        console.print()


def _place(hit: Hit) -> str:
    """Where a hit stands: the headline, or the summary's sentence N once it was weighed."""
    if hit.field == 0:
        return "title"
    return f"summary, sentence {hit.sentence}" if hit.sentence > 0 else "summary"


def terms_cap(matcher: TopicMatcher, text: str) -> int:
    return next(t.cap for t in matcher.terms if t.text == text and t.role not in (ACTOR, EXCLUSION))
