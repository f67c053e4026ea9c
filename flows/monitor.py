"""Prefect flow for one monitoring cycle: fetch → parse and score → store → alerts.

Run it directly (`python flows/monitor.py [config.yaml]`) or through `tensionwatch run`.
The work is done by plain functions in tensionwatch.cycle / fetch / store; this file only
gives each step a task with a name that reads well in the Prefect UI.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed, State

from tensionwatch.alerting import MonitorReport
from tensionwatch.alerting import monitor as detect_and_deliver
from tensionwatch.config import Config, load_config
from tensionwatch.cycle import CycleBatch, CycleReport, new_batch, parse_and_score, poll_feeds
from tensionwatch.errors import StorageError
from tensionwatch.fetch import FeedState, FetchResult
from tensionwatch.store import Store


@dataclass(frozen=True)
class CycleResult:
    """The flow's return value: a report when the cycle was stored, else why not."""

    report: CycleReport | None
    error: str | None = None
    kept_pending: int = 0
    alerts: MonitorReport | None = None
    alerts_error: str | None = None  # detection or delivery failed; the cycle is stored


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
def store_cycle(store: Store, config: Config, batch: CycleBatch) -> CycleResult:
    """Write the cycle (kept as pending if the database cannot take it now)."""
    try:
        return CycleResult(store.store_cycle(config, batch))
    except StorageError as exc:
        return CycleResult(None, str(exc), store.pending_count())
    except Exception as exc:  # a bug; the batch is already kept, so say so in one line
        error = f"unexpected {type(exc).__name__}: {exc}"
        return CycleResult(None, error, store.pending_count())


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


# The parameters are the config file's path and dry_run: a Config holds feed addresses with secrets
# from the environment in them, and Prefect stores every flow run's parameters.
@flow(name="tensionwatch-monitor", persist_result=False)
def monitor(config_path: str | None = None, dry_run: bool = False) -> State:
    """One monitoring cycle over the feeds and topics in config.yaml; `dry_run` detects
    spikes without recording or sending alerts."""
    config = load_config(config_path)
    store = Store.from_config(config)
    states = read_feed_state(store, config)
    results = fetch_all_feeds(config, states)
    batch = parse_and_score_stories(config, results)
    result = store_cycle(store, config, batch)
    if result.error:
        # A failed run in the Prefect UI; the CLI prints the one-line reason.
        return Failed(message=f"nothing stored: {result.error}", data=result)
    alerts, alerts_error = alerts_step(store, config, batch.run_id, dry_run)
    result = replace(result, alerts=alerts, alerts_error=alerts_error)
    return Completed(message="cycle stored", data=result)


if __name__ == "__main__":
    from tensionwatch.cli import main

    sys.exit(main(["run", *(["--config", sys.argv[1]] if len(sys.argv) > 1 else [])]))
