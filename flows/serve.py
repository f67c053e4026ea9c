"""Serve the monitoring flow, and the watchdog beside it, on config.yaml's schedule.

    python flows/serve.py [config.yaml] [--every SECONDS]

Run by `tensionwatch serve` (which starts a local Prefect server first, unless
PREFECT_API_URL names one) and runnable alone against any server PREFECT_API_URL names.
Flow runs happen in child processes of this one, one at a time per deployment: a run that
would start while the last still runs is cancelled (CANCEL_NEW), and the cycle's own lock
(tensionwatch.guard) stops a cycle started any other way. On Ctrl-C or SIGTERM the schedules
are paused (`pause_on_shutdown`): runs do not pile up as Late while nobody serves them, and
the next serve resumes them.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Interval, Schedule

from tensionwatch.config import ScheduleSettings, load_config
from tensionwatch.serving import load_flow, quiet_connection_errors

GRID = datetime(2026, 1, 1, tzinfo=UTC)  # a midnight: where every interval grid starts
ONE_AT_A_TIME = ConcurrencyLimitConfig(
    limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
)


def cycle_schedule(schedule: ScheduleSettings, every: float | None) -> Schedule:
    """config.yaml's schedule (or `--every`) as a Prefect schedule. Intervals keep to a grid
    from midnight (every 15 min: at :00, :15, :30, :45), whenever serve started: cycles land
    at times an analyst can predict, and a restart does not shift them."""
    if schedule.cron and every is None:
        return Cron(schedule.cron, timezone=schedule.timezone)
    seconds = every if every is not None else schedule.interval_minutes * 60
    return Interval(timedelta(seconds=seconds), anchor_date=GRID, timezone=schedule.timezone)


def deployments(config_file: Path, every: float | None = None) -> list[RunnerDeployment]:
    """The monitoring flow on the schedule, and the watchdog every schedule.watchdog_minutes."""
    config = load_config(config_file)
    parameters = {"config_path": str(config_file.resolve())}
    served = [
        load_flow("monitor.py", "monitor").to_deployment(
            name="scheduled",
            schedule=cycle_schedule(config.schedule, every),
            parameters=parameters,
            concurrency_limit=ONE_AT_A_TIME,
            description="One tensionwatch cycle: fetch, score, store, alert.",
            tags=["tensionwatch"],
        )
    ]
    if config.schedule.watchdog_minutes:
        served.append(
            load_flow("watchdog.py", "watchdog").to_deployment(
                name="scheduled",
                schedule=Interval(
                    timedelta(minutes=config.schedule.watchdog_minutes), anchor_date=GRID
                ),
                parameters=parameters,
                concurrency_limit=ONE_AT_A_TIME,
                description="A health alert when no cycle has been stored for a while; "
                "deliveries that are due.",
                tags=["tensionwatch"],
            )
        )
    return served


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", default="config.yaml")
    parser.add_argument("--every", type=float, metavar="SECONDS", help="instead of the schedule")
    args = parser.parse_args(argv)
    quiet_connection_errors()
    serve(*deployments(Path(args.config), args.every), pause_on_shutdown=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
