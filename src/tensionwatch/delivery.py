"""Send one message to one destination through Apprise, and say plainly whether it arrived.

Apprise is called directly and its result checked (Prefect's notification blocks ignore a
failed send unless told to raise). A destination that renders Markdown (or HTML, which Apprise
converts Markdown to) gets the Markdown message; one that shows text gets the plain one.
Errors are Apprise's own warnings, with the destination's secrets hidden by the caller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import apprise

_WARNING_AND_ABOVE = {logging.WARNING, logging.ERROR, logging.CRITICAL}


@dataclass(frozen=True, slots=True)
class Sent:
    ok: bool
    error: str | None = None  # why not, in Apprise's words (may quote the address: redact it)
    # No answer in time: the message may have arrived all the same (Apprise stops waiting,
    # the request may still complete), so it must not be sent again.
    unsure: bool = False


_TIMEOUT_WORDS = ("timed out", "timeout", "did not finish")


def send(url: str, title: str, text: str, markdown: str, timeout: float) -> Sent:
    service = apprise.Apprise.instantiate(url)
    if service is None:
        return Sent(False, "not an Apprise URL that this installation knows")
    formats = service.notify_format
    formats = formats if isinstance(formats, tuple) else (formats,)
    as_text = formats[0] == apprise.NotifyFormat.TEXT
    notifier = apprise.Apprise()
    notifier.add(service)
    result = notifier.notify(
        text if as_text else markdown,
        title=title,
        body_format=apprise.NotifyFormat.TEXT if as_text else apprise.NotifyFormat.MARKDOWN,
        timeout=timeout,
    )
    if result:
        return Sent(True)
    problems = [
        str(entry.message).strip()
        for outcome in result
        for entry in outcome.logs()
        if logging.getLevelName(str(entry.level)) in _WARNING_AND_ABOVE
    ]
    error = "; ".join(dict.fromkeys(problems)) or f"not delivered ({result.status.name})"
    unsure = result.status == apprise.AppriseResultStatus.TIMEOUT or any(
        word in error.lower() for word in _TIMEOUT_WORDS
    )
    return Sent(False, error, unsure)
