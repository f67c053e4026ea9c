"""Alert messages as plain text and as Markdown, with every piece of story text made inert.

Titles and links come from feeds, so they are hostile: a title carrying Markdown or HTML must
not forge a link or markup, an `@channel` or `<!here>` must not notify anyone, a newline must
not forge a line of the message, and a link must be an http(s) address that cannot break out
of its Markdown. Only tensionwatch's own words are formatted.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from tensionwatch.text import strip_controls

# Markdown's inline punctuation, and & (an HTML entity): each is escaped with a backslash in
# story text. What matters only at the start of a line (#, -, 1.) cannot occur there: story
# text is one line, placed after tensionwatch's own words.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|<>~&])")
# Mentions in chat services: @channel, @here, @everyone, @user. A zero-width space after the
# @ keeps the text readable and the mention dead.
_MENTION = re.compile(r"@(?=\w)")
ZERO_WIDTH_SPACE = "\u200b"
# <!channel>, <@user>, <@&role>, <#channel> (Slack, Discord, Mattermost), and a Markdown link's
# "](": a zero-width space between the two characters breaks each.
_CHAT_SYNTAX = re.compile(r"<(?=[!@#])|\](?=\()")
# Characters that reorder how text displays (a headline could hide or reverse a link).
_BIDI = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
MAX_TITLE = 200
# What may stay as it is in a link; everything else is percent-encoded.
_URL_SAFE = "-._~:/?#@!$&*+,;=%"


def inert_text(text: str | None) -> str:
    """Story text for a plain-text message: one line, no control or direction characters,
    no mentions, and no Markdown link syntax. Services that show "text" may still render
    Markdown and chat syntax (Discord, Mattermost), so `[a](b)`, `<!channel>`, `<@&role>` and
    `@here` are broken with a zero-width space, which leaves them readable."""
    line = " ".join(strip_controls(_BIDI.sub("", text or "")).split())[:MAX_TITLE]
    line = _MENTION.sub("@" + ZERO_WIDTH_SPACE, line)
    return _CHAT_SYNTAX.sub(lambda m: m.group(0) + ZERO_WIDTH_SPACE, line)


def inert_markdown(text: str | None) -> str:
    """Story text for a Markdown message: inert_text with Markdown and HTML escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", inert_text(text))


def safe_link(url: str | None) -> str | None:
    """An http(s) address with every character that could end a Markdown link or autolink
    percent-encoded; None for anything else (javascript:, data:, no host, …)."""
    if not url:
        return None
    url = "".join(strip_controls(url).split())
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return quote(url, safe=_URL_SAFE)


def compose(alert: dict[str, Any], topic_title: str) -> tuple[str, str, str]:
    """(title, plain text, Markdown) of a spike alert: topic, window, value against the
    baseline median, z, severity, and the top events."""
    start, end = alert["window_start"], alert["window_end"]
    window = f"{start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC ({alert['window_hours']:g} h)"
    if end.date() != start.date():
        window = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC ({alert['window_hours']:g} h)"
    severity = alert["severity"]
    title = f"tensionwatch: {topic_title} spike, {severity}"
    figures = (
        f"{alert['metric']} {alert['value']:.4g} against a baseline median of "
        f"{alert['baseline_median']:.4g} over {alert['baseline_windows']} windows; "
        f"z {alert['z']:.1f} ({alert['why']})"
    )
    head = f"{topic_title} ({alert['topic']}): {severity} spike in the window {window}."
    text = [inert_text(head), figures, "", "Top events:"]
    markdown = [f"**{inert_markdown(head)}**", "", inert_markdown(figures), "", "**Top events:**"]
    for i, event in enumerate(alert.get("top_events") or [], 1):
        terms = ", ".join(event.get("terms") or [])
        detail = (
            f"{event['outlets']} outlet{'s' if event['outlets'] != 1 else ''}, "
            f"score {event['score']:g}" + (f", terms: {terms}" if terms else "")
        )
        link = safe_link(event.get("url"))
        text.append(f"{i}. {inert_text(event['title'])} ({inert_text(detail)})")
        if link:
            text.append(f"   {link}")
        markdown.append(
            f"{i}. {inert_markdown(event['title'])} ({inert_markdown(detail)})"
            + (f" <{link}>" if link else "")
        )
    if not alert.get("top_events"):
        text.append("(none stored)")
        markdown.append("(none stored)")
    return title, "\n".join(text), "\n".join(markdown)


def compose_feed_gone(feed_id: str, url: str, since: datetime) -> tuple[str, str, str]:
    """(title, plain text, Markdown) of the health alert for a feed retired after 410 Gone."""
    title = f"tensionwatch: feed {inert_text(feed_id)} is gone"
    said = f"answered 410 Gone at {since:%Y-%m-%d %H:%M} UTC: the outlet says it is gone for good."
    then = (
        "It is retired and not asked again; its stories are missing from the index until its "
        "url is changed in config.yaml (or it is removed)."
    )
    text = f"The feed {inert_text(feed_id)} ({inert_text(url)}) {said} {then}"
    markdown = f"The feed **{inert_markdown(feed_id)}** ({inert_markdown(url)}) {said} {then}"
    return title, text, markdown


def compose_health(kind: str, why: str) -> tuple[str, str, str]:
    """(title, plain text, Markdown) of a health alert or of its clearing."""
    if kind == "health":
        title = "tensionwatch: the pipeline is blind"
        text = f"{why}. Spikes are not raised from windows with poor coverage until it recovers."
    else:
        title = "tensionwatch: the pipeline is back"
        text = f"{why}."
    return title, inert_text(text), inert_markdown(text)
