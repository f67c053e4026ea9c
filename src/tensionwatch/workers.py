"""Parse and score each fetched body in a worker process, under a time limit.

feedparser and the text clean-up run synchronously over bytes from the open internet. Most
bodies take milliseconds, but nothing bounds the worst case from outside (a pathological
body, a bug in a parser), and a Python thread cannot be stopped. So each feed's body is
handed to a small pool of worker processes (pebble's ProcessPool): a feed that is not done
within `parse.timeout_seconds` has its worker killed and replaced, and fails alone with a clear
error; a worker that dies (out of memory, a crash in C code) fails only its feed too. The pool
also puts both cores to work on a cold cycle.

Workers are forked from a "forkserver" that has imported this module, not from the cycle's
own process (which may run threads for Prefect or httpx: forking those is unsafe). Each worker
compiles the topic rules once. Like any multiprocessing child, a worker imports the caller's
main module: a script that runs a cycle needs the `if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from pebble import ProcessExpired, ProcessPool

from tensionwatch.config import Topic
from tensionwatch.parse import ParsedFeed, parse_feed
from tensionwatch.score import CompiledRules, TopicScore, compile_topics, score_story
from tensionwatch.text import describe_error


@dataclass(frozen=True, slots=True)
class FeedBody:
    """One fetched body to parse, with what parse_feed needs to know about its feed."""

    feed_id: str
    feed_url: str
    language: str
    body: bytes = field(repr=False)
    headers: Mapping[str, str]
    fetched_at: datetime
    base_url: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedAndScored:
    parsed: ParsedFeed
    scores: dict[str, list[TopicScore]] = field(default_factory=dict)  # story_id → scores


_rules: CompiledRules | None = None


def _compile(topics: dict[str, Topic]) -> None:
    global _rules
    _rules = compile_topics(topics)


def parse_and_score_body(job: FeedBody, rules: CompiledRules | None = None) -> ParsedAndScored:
    """Parse one body and score its stories (in a worker, with the rules it compiled)."""
    rules = rules if rules is not None else _rules
    if rules is None:  # pragma: no cover - the pool's initializer always sets them
        raise RuntimeError("worker started without topic rules")
    parsed = parse_feed(
        job.feed_id,
        job.feed_url,
        job.language,
        job.body,
        job.headers,
        job.fetched_at,
        job.base_url,
    )
    scores = {
        story.story_id: score_story(rules, story.title, story.summary, story.language)
        for story in parsed.stories
    }
    return ParsedAndScored(parsed, scores)


def failed_body(job: FeedBody, error: str) -> ParsedAndScored:
    return ParsedAndScored(ParsedFeed(job.feed_id, error=error))


class FeedWorkers:
    """A pool of worker processes that parse and score bodies; see the module docstring."""

    def __init__(self, pool: ProcessPool, timeout: float):
        self._pool = pool
        self.timeout = timeout

    def run(self, jobs: list[FeedBody]) -> list[ParsedAndScored]:
        """One result per job, in order; a job that fails or overruns fails alone."""
        futures = [
            self._pool.schedule(parse_and_score_body, (job,), timeout=self.timeout) for job in jobs
        ]
        results = []
        for job, future in zip(jobs, futures, strict=True):
            try:
                results.append(future.result())
            except FutureTimeout:
                results.append(
                    failed_body(
                        job,
                        f"parsing took longer than {self.timeout:g} s (parse.timeout_seconds); "
                        "the body was not read",
                    )
                )
            except ProcessExpired as exc:
                results.append(
                    failed_body(job, f"the parser process died (exit code {exc.exitcode})")
                )
            except Exception as exc:  # one body must never fail the cycle, whatever goes wrong
                message = describe_error(exc)
                results.append(failed_body(job, f"cannot parse the feed ({message})"))
        return results


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@contextmanager
def feed_workers(
    topics: dict[str, Topic], timeout: float, workers: int | None = None
) -> Iterator[FeedWorkers]:
    """A pool for one cycle (or one test); its processes are stopped on leaving."""
    context = multiprocessing.get_context("forkserver")
    # The forkserver imports tensionwatch once, so each worker starts without importing it.
    context.set_forkserver_preload(["tensionwatch.workers"])
    pool = ProcessPool(
        max_workers=workers or default_workers(),
        initializer=_compile,
        initargs=(topics,),
        context=context,
    )
    try:
        yield FeedWorkers(pool, timeout)
    finally:
        pool.stop()
        pool.join()
