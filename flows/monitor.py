"""Prefect flow for one monitoring cycle: fetch → parse and score → store → alerts → prune →
summary.

Run it directly (`python flows/monitor.py [config.yaml]`), through `tensionwatch run`, on a
schedule (`tensionwatch serve`), or from a worker (prefect.yaml). The work is done by plain
functions in tensionwatch.cycle / fetch / store / alerting; this file only gives each step a
task with a name that reads well in the Prefect UI.

Big values (the config, the fetched bodies, the batch of stories) go between tasks wrapped in
`quote`: Prefect would otherwise walk every story and every body of a cycle looking for
futures to wait on, which cost as much as parsing them (bench/prefect_cost.py).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Cancelled, Completed, Failed, State
from prefect.utilities.annotations import quote

from tensionwatch.alerting import MonitorReport
from tensionwatch.alerting import monitor as detect_and_deliver
from tensionwatch.config import Config, load_config
from tensionwatch.cycle import CycleBatch, CycleReport, new_batch, parse_and_score, poll_feeds
from tensionwatch.errors import StorageError
from tensionwatch.fetch import FeedState, FetchResult
from tensionwatch.guard import CycleRunningError
from tensionwatch.retention import prune_if_due
from tensionwatch.serving import quiet_connection_errors
from tensionwatch.store import Store
from tensionwatch.summary import CycleSummary, index_today, log_line, markdown, summarise

# A served flow run's log keeps one line, not a traceback, when the API's connection drops.
quiet_connection_errors()


@dataclass(frozen=True)
class Stored:
    """What the store step did: a report when the cycle was stored, else why not."""

    report: CycleReport | None
    error: str | None = None
    kept_pending: int = 0


@dataclass(frozen=True)
class CycleResult:
    """The flow's return value, small on purpose (Prefect walks what a flow returns): what
    the cycle found when it was stored, else why not."""

    summary: CycleSummary | None
    error: str | None = None
    kept_pending: int = 0
    alerts: MonitorReport | None = None
    alerts_error: str | None = None  # detection or delivery failed; the cycle is stored
    skipped: bool = False  # another cycle held the database: this one did nothing


# Caching is off everywhere: every cycle must really fetch, and bodies are not worth hashing.
# Results are never persisted: they hold feed addresses with their secrets, and whole bodies.
@task(name="read feed state", cache_policy=NO_CACHE, persist_result=False)
def read_feed_state(store: Store, config: Config) -> dict[str, FeedState]:
    """Read each feed's validators for conditional GET and when it is next due."""
    return store.load_states(config)


@task(name="fetch feeds", cache_policy=NO_CACHE, persist_result=False)
def fetch_all_feeds(config: Config, states: dict[str, FeedState]) -> list[FetchResult]:
    """Fetch the feeds that are due concurrently, politely, within the configured limits."""
    return poll_feeds(config, states)


@task(name="parse and score stories", cache_policy=NO_CACHE, persist_result=False)
def parse_and_score_stories(config: Config, results: list[FetchResult]) -> CycleBatch:
    """Parse fetched bodies into stories and score each against every topic."""
    return parse_and_score(config, new_batch(config), results)


@task(name="store cycle in DuckDB", cache_policy=NO_CACHE, persist_result=False)
def store_cycle(store: Store, config: Config, batch: CycleBatch) -> Stored:
    """Write the cycle (kept as pending if the database cannot take it now)."""
    try:
        return Stored(store.store_cycle(config, batch))
    except StorageError as exc:
        return Stored(None, str(exc), store.pending_count())
    except Exception as exc:  # a bug; the batch is already kept, so say so in one line
        error = f"unexpected {type(exc).__name__}: {exc}"
        return Stored(None, error, store.pending_count())


@task(name="detect spikes and deliver alerts", cache_policy=NO_CACHE, persist_result=False)
def alerts_step(
    store: Store, config: Config, run_id: str, dry_run: bool
) -> tuple[MonitorReport | None, str | None]:
    """Judge the windows closed since the last cycle; record and deliver new alerts. A
    failure here is reported, never the cycle's: its stories are stored already."""
    try:
        report = detect_and_deliver(store, config, run_id, dry_run=dry_run)
    except Exception as exc:
        error = config.redact(f"{type(exc).__name__}: {exc}")
        # Said where an unattended run is watched too (the Prefect UI and logs), not only
        # by the CLI: the flow stays Completed, its stories are stored.
        get_run_logger().warning("alerts: detection or delivery failed: %s", error)
        return None, error
    return report, None


@task(name="prune old text and fetch logs", cache_policy=NO_CACHE, persist_result=False)
def prune_step(store: Store, config: Config) -> None:
    """Once a `retention.prune_every_hours`: remove story text and fetch logs older than the
    retention keeps, then checkpoint. A failure is a warning: the next cycle tries again."""
    logger = get_run_logger()
    try:
        report = prune_if_due(store, config)
    except (StorageError, OSError) as exc:
        logger.warning("prune: not done this cycle: %s", exc)
        return
    if report is not None:
        logger.info(
            "pruned summaries=%d title_words=%d fetches=%d database_mb=%.1f",
            report.summaries, report.title_words, report.fetches,
            report.bytes_after / 1e6,
        )  # fmt: skip


@task(name="publish run summary", cache_policy=NO_CACHE, persist_result=False)
def publish_summary(
    store: Store,
    config: Config,
    report: CycleReport,
    alerts: MonitorReport | None,
    alerts_error: str | None,
    top: int,
) -> CycleSummary:
    """What this run found, as a Markdown artifact for the Prefect UI and as the value the
    CLI prints. Publishing it may fail (a warning); the cycle is stored all the same."""
    logger = get_run_logger()
    summary = summarise(config, report, top)
    try:
        summary = replace(summary, index=index_today(store, list(config.topics)))
        create_markdown_artifact(
            key="tensionwatch-cycle",
            markdown=markdown(config, summary, alerts, alerts_error),
            description=f"tensionwatch cycle {summary.run_id[:8]}: "
            f"{summary.new_stories} new stories",
        )
    except Exception as exc:
        logger.warning("run summary: not published: %s: %s", type(exc).__name__, exc)
    return summary


# The parameters are the config file's path and dry_run: a Config holds feed addresses with secrets
# from the environment in them, and Prefect stores every flow run's parameters.
@flow(name="tensionwatch-monitor", persist_result=False)
def monitor(config_path: str | None = None, dry_run: bool = False, top: int = 5) -> State:
    """One monitoring cycle over the feeds and topics in config.yaml; `dry_run` detects
    spikes without recording or sending alerts; `top`: stories the summary lists."""
    config = load_config(config_path)
    store = Store.from_config(config)
    try:
        with store.cycle_lock("a cycle"):
            return _cycle(store, config, dry_run, top)
    except CycleRunningError as exc:
        # Not a failure: the cycle that holds the database is doing the work.
        get_run_logger().warning("%s", exc)
        return Cancelled(message=str(exc), data=CycleResult(None, str(exc), skipped=True))


def _cycle(store: Store, config: Config, dry_run: bool, top: int) -> State:
    logger = get_run_logger()
    states = read_feed_state(store, quote(config))
    results = fetch_all_feeds(quote(config), quote(states))
    batch = parse_and_score_stories(quote(config), quote(results))
    del results  # the bodies: not held while the cycle stores
    stored = store_cycle(store, quote(config), quote(batch))
    del batch
    if stored.report is None:
        # A failed run in the Prefect UI; the CLI prints the one-line reason.
        logger.error("nothing stored: %s", stored.error)
        result = CycleResult(None, stored.error, stored.kept_pending)
        return Failed(message=f"nothing stored: {stored.error}", data=result)
    alerts, alerts_error = alerts_step(store, quote(config), stored.report.batch.run_id, dry_run)
    if not dry_run:
        prune_step(store, quote(config))
    summary = publish_summary(
        store, quote(config), quote(stored.report), quote(alerts), alerts_error, top
    )
    logger.info(log_line(summary, alerts))  # one line to grep an unattended run's log for
    for failure in summary.failures:  # INFO: `run` prints them in its summary already
        logger.info("feed %s failed: %s", failure.feed, failure.error)
    result = CycleResult(summary, None, 0, alerts, alerts_error)
    return Completed(message="cycle stored", data=result)


if __name__ == "__main__":
    from tensionwatch.cli import main

    sys.exit(main(["run", *(["--config", sys.argv[1]] if len(sys.argv) > 1 else [])]))
