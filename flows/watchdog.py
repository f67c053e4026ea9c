"""Prefect flow beside the cycles: raise a health alert when no cycle has been stored for
`alerts.stalled_hours`, and deliver the alerts that are due (tensionwatch.alerting.watchdog,
as `tensionwatch alerts --watchdog` does).

It takes no cycle lock: a cycle stuck while holding one is what it must notice.
"""

from __future__ import annotations

import sys

from prefect import flow, get_run_logger

from tensionwatch.alerting import watchdog as watch
from tensionwatch.config import load_config
from tensionwatch.store import Store


@flow(name="tensionwatch-watchdog", persist_result=False)
def watchdog(config_path: str | None = None) -> int:
    """Health alert when cycles have stalled; deliveries that are due. Returns alerts raised."""
    config = load_config(config_path)
    report = watch(Store.from_config(config), config)
    logger = get_run_logger()
    for alert in report.alerts:
        logger.warning("health alert: %s", alert["title"])
    sent = sum(1 for d in report.deliveries if d.state == "sent")
    logger.info("watchdog alerts=%d deliveries=%d sent=%d", len(report.alerts),
                len(report.deliveries), sent)  # fmt: skip
    return len(report.alerts)


if __name__ == "__main__":
    from tensionwatch.cli import main

    sys.exit(
        main(["alerts", "--watchdog", *(["--config", sys.argv[1]] if len(sys.argv) > 1 else [])])
    )
