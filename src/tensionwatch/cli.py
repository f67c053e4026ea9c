"""The `tensionwatch` command: a thin skin over the library.

Exit codes: 0 the command did its work (a cycle was stored, even if some feeds failed);
1 nothing could be stored, or a file could not be used (the reason is printed on one line);
2 the config or the command line is invalid. No input prints a traceback: an error nobody
foresaw is one line too (TENSIONWATCH_DEBUG=1 shows its traceback).

Everything that came from a feed or a file is printed as plain text (explanation.plain):
never read as Rich markup, control characters removed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import nullcontext, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tensionwatch import __version__
from tensionwatch.config import DEFAULT_CONFIG, Config, config_path, load_config
from tensionwatch.errors import ConfigError, TensionwatchError
from tensionwatch.evaluation import evaluate, load_labelled
from tensionwatch.explanation import explain_story, plain
from tensionwatch.polling import GONE, NETWORK_DOWN
from tensionwatch.query import FORMATS
from tensionwatch.rescoring import rescore
from tensionwatch.score import compile_topics
from tensionwatch.store import Store
from tensionwatch.summary import CycleSummary
from tensionwatch.text import strip_controls

if TYPE_CHECKING:
    from tensionwatch.status import Status

DEFAULT_LABELLED_SET = "tests/data/labelled_news.jsonl"

# Prefect's defaults suit a long-lived server, not a one-off command: its INFO lines and the
# ephemeral API's start/stop notices would bury the summary, and its telemetry call fails
# (noisily) on machines without internet. Each can still be overridden from the environment.
PREFECT_QUIET = {
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=None,
        help=f"config file (default: $TENSIONWATCH_CONFIG, else ./{DEFAULT_CONFIG})",
    )


def _command(
    commands: Any, handler: Callable[[argparse.Namespace], int], name: str, **texts: str
) -> argparse.ArgumentParser:
    """A subcommand with its help texts, the --config option and the function that runs it."""
    parser: argparse.ArgumentParser = commands.add_parser(name, **texts)
    _config_option(parser)
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tensionwatch",
        description="Watch news feeds for geopolitical tension: score stories per topic into DuckDB.",
    )
    parser.add_argument("--version", action="version", version=f"tensionwatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _command(
        commands,
        cmd_run,
        "run",
        help="run one monitoring cycle now and print a summary",
        description="Run one monitoring cycle (fetch, parse, score, store) through the Prefect "
        "flow, then print a summary. Uses Prefect's local ephemeral API: no server needed.",
    )
    run.add_argument(
        "--top", type=int, default=5, metavar="N", help="top stories to show (default 5)"
    )
    run.add_argument("--verbose", action="store_true", help="show Prefect's own log lines")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="detect spikes and show the alerts, but record and send none",
    )

    serve_ = _command(
        commands,
        cmd_serve,
        "serve",
        help="run cycles on the schedule in config.yaml, unattended",
        description="Run the monitoring flow on config.yaml's schedule (schedule.interval_minutes "
        "or schedule.cron in schedule.timezone), and the alert watchdog beside it, until Ctrl-C "
        "or SIGTERM. Uses the Prefect server PREFECT_API_URL names; without one, starts a local "
        "Prefect server on 127.0.0.1 (schedule.server_port, its home beside the database), "
        "restarts it if it dies and stops it on the way out. Schedules are paused when serve "
        "stops and resumed when it starts again.",
    )
    serve_.add_argument(
        "--every",
        type=parse_duration,
        metavar="DURATION",
        help="a cycle every DURATION (30s, 5m, 1h30m) instead of the schedule, for trying it out",
    )

    evaluate = _command(
        commands,
        cmd_eval,
        "eval",
        help="measure the topic rules against a labelled set",
        description="Score a labelled set (JSON Lines: title, summary, a 0/1 label per topic, "
        "intensity) with the current rules and print precision, recall, F1 and the Spearman "
        "correlation of score with intensity per topic, beside the baseline 'both named' "
        "(relevant = the topic's parties are named anywhere), then the items the rules got "
        "wrong.",
    )
    evaluate.add_argument(
        "--set",
        dest="labelled_set",
        metavar="PATH",
        default=DEFAULT_LABELLED_SET,
        help=f"labelled set (default: {DEFAULT_LABELLED_SET})",
    )
    evaluate.add_argument(
        "--misses",
        type=int,
        default=20,
        metavar="N",
        help="misclassified items to list per topic (default 20)",
    )

    explain = _command(
        commands,
        cmd_explain,
        "explain",
        help="show why a story got its scores",
        description="Show, per topic, which actor groups and terms matched, where, with what "
        "weight, what was negated or excluded, and the resulting score: for a stored story "
        "(STORY_ID, or a unique prefix of it) or for free text (--text).",
    )
    explain.add_argument("story_id", nargs="?", metavar="STORY_ID", help="a stored story's id")
    explain.add_argument("--text", metavar="HEADLINE", help="explain this text instead")
    explain.add_argument("--summary", metavar="TEXT", default="", help="summary to go with --text")
    explain.add_argument("--language", metavar="CODE", help="language of --text (e.g. en, tr)")

    rescore_ = _command(
        commands,
        cmd_rescore,
        "rescore",
        help="recompute stored scores under the current rules",
        description="Score stored stories with the current rules of config.yaml, in bulk and in "
        "one transaction. The new scores are stored under the new rules version beside the old "
        "ones (or replace them with --replace); the trend views switch to the new version, and "
        "the old one stays queryable in topic_hourly_by_version / topic_daily_by_version.",
    )
    rescore_.add_argument(
        "--topic",
        action="append",
        metavar="TOPIC",
        help="only this topic (repeatable; default: every topic)",
    )
    rescore_.add_argument(
        "--since",
        type=_utc_date,
        metavar="DATE",
        help="only stories whose event_at is on or after DATE (ISO, UTC)",
    )
    rescore_.add_argument(
        "--replace",
        action="store_true",
        help="drop the rescored stories' scores under other rules versions",
    )
    audit = _command(
        commands,
        cmd_audit,
        "audit",
        help="draw a sample of flagged stories and near misses to read, or report on one read",
        description="GPR-style audit. --sample FILE writes, per topic and under its current "
        "rules, N random stories the rules flag and N near misses (stories that name both "
        "parties of the topic but are not flagged) as JSON Lines with an empty label; a person "
        "sets label to 1 (relevant) or 0 (not). --report FILE prints, per topic, precision "
        "(relevant among flagged) and the near-miss relevant rate, with 95% Wilson intervals.",
    )
    action = audit.add_mutually_exclusive_group(required=True)
    action.add_argument("--sample", metavar="FILE", help="write a new sample to FILE")
    action.add_argument("--report", metavar="FILE", help="report on a labelled sample FILE")
    audit.add_argument(
        "-n", type=int, default=100, metavar="N", help="stories of each kind per topic (100)"
    )
    audit.add_argument("--topic", action="append", metavar="TOPIC", help="only this topic")
    audit.add_argument("--seed", type=int, default=0, help="another seed, another sample (0)")
    audit.add_argument("--since", type=_utc_date, metavar="DATE", help="event_at on or after")
    audit.add_argument("--until", type=_utc_date, metavar="DATE", help="event_at before")
    sql = _command(
        commands,
        cmd_sql,
        "sql",
        help="run a read-only SQL query against the database",
        description="Run SQL against the database, read-only: a table by default, or CSV, JSON "
        "Lines or Parquet. Statements that would write, attach another database, read or write "
        "files (COPY, read_csv, glob), or install or load extensions are refused by DuckDB's own "
        "settings, with one line. The query library is in sql/queries/.",
    )
    sql.add_argument("query", nargs="?", metavar="SQL", help="the query")
    sql.add_argument("--file", metavar="F", help="read the query from a file (sql/queries/…)")
    sql.add_argument("--format", choices=FORMATS, default="table", help="output (table)")
    sql.add_argument("--output", metavar="F", help="write to this file (needed for parquet)")
    sql.add_argument(
        "--max-rows", type=int, default=200, metavar="N", help="rows a table shows (200)"
    )
    report = _command(
        commands,
        cmd_report,
        "report",
        help="write a self-contained HTML page of the trends",
        description="Write one HTML page that opens with no network: per topic the daily index "
        "with its 7-day mean, the threat / act split, days of poor coverage shaded, a marker "
        "where a spike alert fired, and the top events of recent days with links; then the "
        "feed-health table.",
    )
    report.add_argument("--days", type=int, default=90, metavar="N", help="days shown (90)")
    report.add_argument("--output", metavar="F", default="report.html", help="(report.html)")
    export = _command(
        commands,
        cmd_export,
        "export",
        help="write stories, scores, events and the daily index as Parquet",
        description="Write the stored data as Parquet files partitioned by UTC day "
        "(DIR/<table>/day=YYYY-MM-DD/), for tools elsewhere: stories, story_scores, "
        "story_events and topic_daily. Each table's folder is replaced whole.",
    )
    export.add_argument("--parquet", metavar="DIR", required=True, help="the folder to write")
    prune = _command(
        commands,
        cmd_prune,
        "prune",
        help="remove story text and fetch logs older than config.yaml's retention",
        description="Remove what config.yaml's `retention` says is old enough: the summaries "
        "of stories (story_text_days) and the fetch logs (fetch_log_days). Scores, titles, "
        "links, events, runs, alerts and the daily index are kept. Runs under the write lock, "
        "like a cycle, and prints what was removed and the database size before and after. "
        "The scheduled flow prunes once every retention.prune_every_hours by itself.",
    )
    prune_how = prune.add_mutually_exclusive_group()
    prune_how.add_argument(
        "--dry-run", action="store_true", help="count what would be removed; change nothing"
    )
    prune_how.add_argument(
        "--compact",
        action="store_true",
        help="then rewrite the database into a smaller file (DuckDB reuses freed space but "
        "never shrinks a file); needs free disk for the new file, see README",
    )
    alerts = _command(
        commands,
        cmd_alerts,
        "alerts",
        help="spike detection: where each topic stands, and a backtest over history",
        description="Without a subcommand: the alerts of recent days with the state of each "
        "delivery, then each topic's latest complete windows as the detector judges them now "
        "(warming up, below threshold, a spike; z against the baseline median). `--test` "
        "sends a test message to every destination. `alerts backtest` replays the detector "
        "over stored history.",
    )
    alerts.add_argument("--days", type=float, default=7, metavar="N", help="alerts shown (7)")
    alerts.add_argument(
        "--test", action="store_true", help="send a test message to every destination"
    )
    alerts.add_argument(
        "--watchdog",
        action="store_true",
        help="run beside the schedule (e.g. cron, every 15 min): a health alert when no cycle "
        "was stored for alerts.stalled_hours, and deliveries that are due",
    )
    alerts_commands = alerts.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND")
    backtest = alerts_commands.add_parser(
        "backtest",
        help="the alerts the detector would have raised over stored history",
        description="Run the detector over the stored history as if each window had just "
        "closed (elevated state and cooldown included) and print one row per alert it would "
        "have raised — topic, kind, window start and end (UTC), severity, z, value, baseline "
        "median, top stories — then the alerts per month. Windows are read with every story "
        "stored now. This is how to choose thresholds (config.yaml `alerts`) before trusting "
        "them.",
    )
    # SUPPRESS: `alerts --config F backtest` keeps F (a subparser's default would replace it).
    backtest.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                          help="config file (as for `alerts`)")  # fmt: skip
    backtest.add_argument("--since", type=_utc_date, required=True, metavar="DATE")
    backtest.add_argument("--until", type=_utc_date, metavar="DATE", help="(now)")
    backtest.add_argument("--format", choices=("table", "csv", "json"), default="table")
    _command(
        commands,
        cmd_status,
        "status",
        help="how the unattended installation is doing",
        description="Show the last cycles and their outcome, whether the network looks down, "
        "the feeds that are failing, waiting, retired or moved (with when each is asked next "
        "and why), alert deliveries not sent yet, batches waiting in pending, the database's "
        "size and the rules versions. Reads the read copy; writes nothing.",
    )
    feeds = commands.add_parser(
        "feeds",
        help="check the configured feeds",
        description="Commands about the configured feeds. `feeds check` asks every feed once.",
    )
    _config_option(feeds)
    feeds_commands = feeds.add_subparsers(dest="feeds_command", metavar="SUBCOMMAND")
    feeds_commands.required = True
    check = feeds_commands.add_parser(
        "check",
        help="ask every configured feed once now and show what it sends",
        description="Fetch every configured feed once now, at its configured address, whole "
        "(ignoring due times and validators), parse each body as a cycle does, and print per "
        "feed: HTTP status, content type, entries, newest entry date, and the error if any. "
        "Writes nothing. To validate a new config; exits 0 when it ran, even if feeds failed.",
    )
    # SUPPRESS: `feeds --config F check` keeps F (a subparser's default would replace it).
    check.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                       help="config file (as for `feeds`)")  # fmt: skip
    check.set_defaults(handler=cmd_feeds_check)
    return parser


def cmd_status(args: argparse.Namespace) -> int:
    from tensionwatch.status import read_status

    config = load_config(args.config)
    print_status(Console(soft_wrap=False), config, read_status(Store.from_config(config), config))
    return 0


def cmd_feeds_check(args: argparse.Namespace) -> int:
    from tensionwatch.feedcheck import check_feeds

    config = load_config(args.config)
    checks = check_feeds(config)
    console = Console(soft_wrap=False)
    table = Table(title=f"Feeds in {config_path(args.config)}, asked once now")
    for column in ("feed", "HTTP", "content type", "entries", "newest entry (UTC)", "error"):
        table.add_column(column, justify="right" if column in ("HTTP", "entries") else "left",
                         overflow="fold")  # fmt: skip
    for c in checks:
        newest = f"{c.newest_at.astimezone(UTC):%Y-%m-%d %H:%M}" if c.newest_at else "—"
        problem = plain(c.error or "")
        if c.note:
            problem.append(("\n" if c.error else "") + strip_controls(c.note), style="dim")
        table.add_row(
            plain(c.feed_id), str(c.status_code or "—"), plain(c.content_type or "—"),
            str(c.entries), newest, problem,
        )  # fmt: skip
    console.print(table)
    failed = sum(c.failed for c in checks)
    console.print(
        plain(f"{len(checks)} feeds asked: {len(checks) - failed} answered with a feed, "
              f"{failed} failed."),
        highlight=False,
    )  # fmt: skip
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tensionwatch.report import write_report

    if args.days < 1:
        print("tensionwatch report: --days must be at least 1", file=sys.stderr)
        return 2
    days = write_report(Store.from_config(load_config(args.config)), args.days, Path(args.output))
    print(f"wrote {args.output}: {days} topic-days")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tensionwatch.export import export_parquet

    written = export_parquet(Store.from_config(load_config(args.config)), Path(args.parquet))
    print(
        "wrote "
        + ", ".join(f"{table} {rows}" for table, rows in written.items())
        + f" rows to {args.parquet}"
    )
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from tensionwatch.retention import prune

    config = load_config(args.config)
    report = prune(Store.from_config(config), config, dry_run=args.dry_run, compact=args.compact)
    console = Console(soft_wrap=True)

    def before(moment: datetime | None) -> str:
        return "kept for good" if moment is None else f"before {moment:%Y-%m-%d} (UTC)"

    console.print(
        f"{'Would remove' if report.dry_run else 'Removed'}: story text "
        f"{before(report.story_text_before)}, fetch logs {before(report.fetch_logs_before)}",
        highlight=False,
    )
    for label, count in (
        ("story summaries", report.summaries),
        ("headline words kept for grouping", report.title_words),
        ("fetch log rows", report.fetches),
    ):
        console.print(f"  {count:>12,}  {label}", highlight=False)
    size = f"Database: {report.bytes_before / 1e6:,.1f} MB"
    if report.dry_run:
        size += " (a dry run changes nothing)"
    else:
        size += f" before, {report.bytes_after / 1e6:,.1f} MB after"
        if report.compacted:
            size += ", compacted"
        else:
            size += " (the freed space is reused by later cycles; --compact returns it to the disk)"
    console.print(size + f"; {report.seconds:.1f} s", highlight=False)
    for note in report.notes:
        console.print(plain(f"Note: {note}"))
    return 1 if args.compact and not report.compacted else 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from tensionwatch.alerting import (
        backtest,
        history_needed,
        latest_verdicts,
        recent_alerts,
        send_test,
        watchdog,
    )
    from tensionwatch.retention import pruned_before

    config = load_config(args.config)
    store = Store.from_config(config)
    console = Console(soft_wrap=False)
    if args.test:
        if not config.alerts.destinations:
            print("tensionwatch: no alerts.destinations in the config", file=sys.stderr)
            return 1
        outcomes = send_test(config)
        for o in outcomes:
            console.print(
                plain(f"{o.destination}: {o.state}" + (f" ({o.error})" if o.error else "")),
                soft_wrap=True,
            )
        return 0 if all(o.state == "sent" for o in outcomes) else 1
    if args.watchdog:
        print_alerts(console, config, watchdog(store, config), None)
        return 0
    if args.alerts_command != "backtest":
        _print_recent_alerts(console, recent_alerts(store, args.days), args.days)
        table = Table(title="Spike detection now (latest complete windows)")
        for column in ("topic", "window (UTC)", "stories / outlets", "z", "verdict"):
            table.add_column(column, justify="right" if column == "z" else "left")
        metric = config.alerts.metric
        for v in latest_verdicts(store, config):
            w = v.window
            if v.reason == "warming up":
                why = f"warming up: {v.baseline_windows} of {config.alerts.warmup_windows} windows"
            elif v.reason == "partial coverage":
                why = ("no feed was polled" if w.coverage is None
                       else f"partial coverage: {w.coverage:.0%} of feeds answered")  # fmt: skip
            else:
                why = (f"{v.reason}{f' ({v.severity})' if v.severity else ''}: {metric} "
                       f"{v.value:.4g} against a median of {v.median:.4g}")  # fmt: skip
            table.add_row(
                plain(w.topic), f"{w.start:%Y-%m-%d %H:%M} +{w.hours:g}h",
                f"{w.tension_stories} / {w.outlets}", "—" if v.z is None else f"{v.z:.1f}",
                plain(why),
            )  # fmt: skip
        console.print(table)
        return 0
    if args.until and args.until <= args.since:
        print("tensionwatch alerts backtest: --until must be after --since", file=sys.stderr)
        return 2
    found = backtest(store, config, args.since, args.until)
    _, logs_before = pruned_before(store)
    if logs_before is not None and args.since - history_needed(config.alerts) < logs_before:
        print(
            f"tensionwatch: note: the fetch logs before {logs_before:%Y-%m-%d} were pruned "
            "(retention.fetch_log_days): windows before then have no known coverage, so they "
            "raise no alert and are left out of baselines",
            file=sys.stderr,
        )
    columns = ["topic", "kind", "window_start", "window_end", "severity", "z", "value",
               "baseline_median", "top_stories"]  # fmt: skip
    rows = [
        (
            a.decision.verdict.window.topic, "spike",
            a.decision.verdict.window.start.isoformat(), a.decision.verdict.window.end.isoformat(),
            a.decision.verdict.severity, round(a.decision.verdict.z or 0, 2),
            a.decision.verdict.value, a.decision.verdict.median,
            [{k: e[k] for k in ("title", "outlets", "url", "score", "terms")}
             for e in a.top_events],
        )
        for a in found
    ]  # fmt: skip
    per_month = Counter((a.decision.verdict.window.topic, a.decision.verdict.window.end.strftime(
        "%Y-%m")) for a in found)  # fmt: skip
    if args.format == "json":
        for row in rows:
            print(json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False))
        return 0
    if args.format == "csv":
        from tensionwatch.query import QueryResult, write_csv

        flat = [(*r[:-1], " | ".join(e["title"] for e in r[-1])) for r in rows]
        write_csv(QueryResult(columns, [], flat), sys.stdout)
        return 0
    console.print(f"Alerts the detector would have raised: {len(found)}", highlight=False)
    metric = config.alerts.metric
    for a in found:
        v, w = a.decision.verdict, a.decision.verdict.window
        console.print(
            plain(f"\n{w.topic}  {w.start:%Y-%m-%d %H:%M} to {w.end:%Y-%m-%d %H:%M} UTC "
                  f"({w.hours:g} h)  {v.severity}  z {v.z:.1f}  {metric} {v.value:.4g} "
                  f"against a median of {v.median:.4g}"),
            soft_wrap=True,
        )  # fmt: skip
        for i, e in enumerate(a.top_events, 1):
            console.print(
                plain(f"  {i}. {e['title']} ({e['outlets']} outlet{'s' * (e['outlets'] != 1)}, "
                      f"score {e['score']:g}; "
                      f"{', '.join(e['terms'] or [])}) {e['url'] or ''}"),
                soft_wrap=True,
            )  # fmt: skip
    months = Table(title="\nAlerts per month")
    for column in ("topic", "month", "alerts"):
        months.add_column(column, justify="right" if column == "alerts" else "left")
    for (topic, month), n in sorted(per_month.items()):
        months.add_row(plain(topic), month, str(n))
    console.print(months)
    return 0


def _print_recent_alerts(console: Console, alerts: list[dict[str, Any]], days: float) -> None:
    if not alerts:
        console.print(f"No alerts in the last {days:g} days.", highlight=False)
        return
    table = Table(title=f"Alerts of the last {days:g} days")
    for column in ("detected (UTC)", "kind", "topic", "window (UTC)", "severity", "z", "state",
                   "deliveries"):  # fmt: skip
        table.add_column(column, justify="right" if column == "z" else "left")
    for a in alerts:
        window = (f"{a['window_start']:%Y-%m-%d %H:%M} +{a['window_hours']:g}h"
                  if a["window_start"] else "")  # fmt: skip
        deliveries = (
            "\n".join(
                f"{d['destination']}: {d['state']}"
                + (f" after {d['attempts']} tries" if d["attempts"] > 1 else "")
                + (f" ({d['last_error']})" if d["last_error"] and d["state"] != "sent" else "")
                for d in a["deliveries"] or []
            )
            or "no destination"
        )
        table.add_row(
            f"{a['detected_at']:%Y-%m-%d %H:%M}", a["kind"], plain(a["topic"]), window,
            a["severity"] or "", "" if a["z"] is None else f"{a['z']:.1f}", a["state"],
            plain(deliveries if a["kind"] == "spike" else f"{a['why']}\n{deliveries}"),
        )  # fmt: skip
    console.print(table)


def cmd_sql(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tensionwatch.query import run_query, write_csv, write_json, write_parquet

    if bool(args.query) == bool(args.file):
        print("tensionwatch sql: give a query or --file F, not both", file=sys.stderr)
        return 2
    if args.format == "parquet" and not args.output:
        print("tensionwatch sql: --format parquet needs --output F", file=sys.stderr)
        return 2
    text = args.query or Path(args.file).read_text(encoding="utf-8")
    store = Store.from_config(load_config(args.config))
    if args.format == "parquet":
        rows = write_parquet(store, text, Path(args.output))
        print(f"wrote {rows} rows to {args.output}", file=sys.stderr)
        return 0
    result = run_query(store, text)
    if args.format == "table":
        console = Console(soft_wrap=False)
        table = Table(show_lines=False)
        for name, type_ in zip(result.columns, result.types, strict=True):
            numeric = any(t in type_ for t in ("INT", "DOUBLE", "DECIMAL", "FLOAT"))
            table.add_column(plain(name), justify="right" if numeric else "left")
        for row in result.rows[: args.max_rows]:
            table.add_row(*(plain("NULL" if v is None else v) for v in row))
        console.print(table)
        more = len(result.rows) - args.max_rows
        if more > 0:
            console.print(plain(f"… {more} more rows (--max-rows, or --format csv)"))
        return 0
    with (
        open(args.output, "w", encoding="utf-8", newline="")
        if args.output
        else nullcontext(sys.stdout)
    ) as out:
        (write_csv if args.format == "csv" else write_json)(result, out)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from tensionwatch.audit import draw_sample, read_labels, summarize, write_sample

    console = Console(soft_wrap=True)
    if args.report:
        audits = summarize(read_labels(args.report))
        table = Table(title=f"Audit of {args.report}")
        for column in ("topic", "precision (flagged)", "near misses relevant", "unread"):
            table.add_column(column, justify="left" if column == "topic" else "right")
        for a in audits:
            table.add_row(
                plain(a.topic), _rate(a.precision), _rate(a.near_miss_relevant), str(a.unlabelled)
            )
        console.print(table)
        return 0
    config = load_config(args.config)
    topics = args.topic or list(config.topics)
    unknown = [t for t in topics if t not in config.topics]
    if unknown:
        print(f"tensionwatch: no topic {', '.join(unknown)} in the config", file=sys.stderr)
        return 1
    store = Store.from_config(config)
    items, population = draw_sample(store, topics, args.n, args.seed, args.since, args.until)
    write_sample(args.sample, items)
    for topic in topics:
        drawn = {
            kind: sum(1 for i in items if i["topic"] == topic and i["kind"] == kind)
            for kind in population[topic]
        }
        console.print(
            plain(
                f"{topic}: {drawn['flagged']} of {population[topic]['flagged']} flagged, "
                f"{drawn['near_miss']} of {population[topic]['near_miss']} near misses"
            )
        )
    console.print(
        plain(
            f"Wrote {len(items)} stories to {args.sample}: set each label to 1 or 0, then run "
            f"tensionwatch audit --report {args.sample}"
        )
    )
    return 0


def _rate(rate: Any) -> str:
    if rate.value is None:
        return "—"
    low, high = rate.interval
    return f"{rate.value:.2f} ({low:.2f}–{high:.2f}) of {rate.labelled}"


def _utc_date(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_rescore(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    report = rescore(Store.from_config(config), config, args.topic, args.since, args.replace)
    console = Console(soft_wrap=True)
    console.print(
        f"Rescored {report.stories} stories in {report.seconds:.1f} s; current rules: "
        + ", ".join(f"{t} {v}" for t, v in report.versions.items()),
        highlight=False,
    )
    table = Table(title="Stored scores by rules version")
    for column in ("topic", "rules_version", "stories", "relevant", ""):
        table.add_column(column, justify="right" if column in ("stories", "relevant") else "left")
    for topic, version, stories, relevant in report.counts:
        mark = "current" if report.versions.get(topic) == version else ""
        table.add_row(topic, plain(version), str(stories), str(relevant), mark)
    console.print(table)
    for note in report.notes:
        console.print(plain(f"Note: {note}"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        err = Console(stderr=True)
        where = f" ({exc.path})" if exc.path else ""
        err.print(Text.assemble(("config error", "bold red"), plain(f"{where}:")), soft_wrap=True)
        for problem in exc.problems:
            err.print(plain(f"  {problem}"), highlight=False, soft_wrap=True)
        return 2
    except (TensionwatchError, OSError, UnicodeDecodeError) as exc:
        print(f"tensionwatch: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, and the traceback on request
        if os.environ.get("TENSIONWATCH_DEBUG"):
            raise
        print(
            f"tensionwatch: unexpected error ({type(exc).__name__}: {_one_line(exc)}); "
            "run with TENSIONWATCH_DEBUG=1 for the traceback, and please report it",
            file=sys.stderr,
        )
        return 1


def _one_line(exc: BaseException) -> str:
    return strip_controls(" ".join(str(exc).split()))


def cmd_run(args: argparse.Namespace) -> int:
    path = config_path(args.config)
    config = load_config(path)  # invalid config: exit 2 before Prefect starts
    for name, value in PREFECT_QUIET.items():
        if not (args.verbose and name == "PREFECT_LOGGING_LEVEL"):
            os.environ.setdefault(name, value)
    from tensionwatch.guard import held_by
    from tensionwatch.serving import ServeError, load_flow, running_server, temporary_server

    if holder := held_by(config.database_path):
        print(
            strip_controls(
                f"tensionwatch: another cycle is running on {config.database_path} ({holder}); "
                "this one did nothing"
            ),
            file=sys.stderr,
        )
        return 1

    # Which Prefect API the run reports to: PREFECT_API_URL (or a Prefect profile's), else the
    # server `serve` keeps when it is up, else a temporary one for this run alone. That one is
    # launched before Prefect is imported, so that both load at once (bench/prefect_cost.py).
    api_url = os.environ.get("PREFECT_API_URL") or running_server(config)
    temporary = None
    if not api_url and "prefect" not in sys.modules:
        with suppress(ServeError, OSError):
            temporary = temporary_server(config)
    try:
        monitor = load_flow("monitor.py", "monitor")  # imports Prefect: only commands that need it
        from prefect.settings import PREFECT_API_URL, temporary_settings

        if temporary is not None and not PREFECT_API_URL.value():
            try:
                temporary.wait_until_healthy()
                api_url = temporary.api_url
            except ServeError:  # Prefect starts its own ephemeral API instead
                temporary.stop()
        with temporary_settings({PREFECT_API_URL: api_url} if api_url else {}):
            state = monitor(
                config_path=str(path.resolve()),
                dry_run=args.dry_run,
                top=args.top,
                return_state=True,
            )
    except BaseException:
        if temporary is not None:
            temporary.stop()
        raise
    if temporary is not None:
        # The run is over: the server is told to stop, and goes on shutting down (its
        # database writes finished with the flow run) while the summary is printed.
        temporary.stop(wait=False)
    result = state.result(raise_on_failure=False)
    console = Console(soft_wrap=True)  # long error lines stay whole for grep and logs
    summary = getattr(result, "summary", None)
    if summary is None:
        error = getattr(result, "error", None) or state.message or "the cycle failed"
        if getattr(result, "skipped", False):
            print(f"tensionwatch: {strip_controls(error)}", file=sys.stderr)
            return 1
        kept = getattr(result, "kept_pending", 0)
        line = f"tensionwatch: nothing stored: {error}"
        if kept:
            line += f" — {kept} fetched cycle(s) kept in pending and stored by the next run"
        print(strip_controls(line), file=sys.stderr)
        return 1
    print_summary(console, config, summary)
    print_alerts(console, config, result.alerts, result.alerts_error)
    return 0


def parse_duration(text: str) -> float:
    """`30s`, `5m`, `2h`, `1h30m` or plain seconds → seconds (argparse type for --every)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"not a duration such as 30s, 5m or 1h30m: {text!r}")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if not MIN_EVERY_SECONDS <= total <= 24 * 3600:
        raise argparse.ArgumentTypeError(
            f"must be from {MIN_EVERY_SECONDS:g} seconds to 24 hours: {text!r}"
        )
    return total


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")
MIN_EVERY_SECONDS = 5.0


def cmd_serve(args: argparse.Namespace) -> int:
    from tensionwatch.serving import serve

    path = config_path(args.config)
    config = load_config(path)  # invalid config: exit 2 before anything starts
    for name, value in PREFECT_QUIET.items():
        if name != "PREFECT_LOGGING_LEVEL":  # an unattended run's INFO lines are its log
            os.environ.setdefault(name, value)
    if args.every is not None:
        when = f"every {args.every:g} s (--every)"
    elif config.schedule.cron:
        when = f"on cron {config.schedule.cron!r} ({config.schedule.timezone})"
    else:
        when = f"every {config.schedule.interval_minutes} min"

    def say(line: str) -> None:
        print(f"tensionwatch serve: {strip_controls(line)}", flush=True)

    say(f"cycles {when} with {path}; Ctrl-C or SIGTERM stops")
    return serve(config, path.resolve(), args.every, say)


def print_alerts(console: Console, config: Config, alerts: Any, error: str | None) -> None:
    """What the cycle's detection raised and delivered (or why it could not)."""
    if error:
        console.print(plain(f"Alerts: detection or delivery failed: {error}"), style="bold red")
        return
    if alerts is None:
        return
    prefix = "Dry run: not recorded or sent. " if alerts.dry_run else ""
    if not alerts.alerts and not alerts.deliveries:
        console.print(plain(f"{prefix}Alerts: none"), highlight=False)
        return
    for alert in alerts.alerts:
        console.print(plain(f"{prefix}Alert: {alert['title']}"), style="bold", highlight=False)
    for d in alerts.deliveries:
        console.print(
            plain(f"  {d.destination}: {d.state}" + (f" ({d.error})" if d.error else "")),
            highlight=False,
        )


def _next_try(when: datetime | None, reason: str | None) -> str:
    """When a feed is asked next and why, for a line of output."""
    if reason == GONE:
        return "retired (410 Gone): not asked again until its url changes in config.yaml"
    if when is None:
        return "asked in the next cycle"
    return f"next try {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({reason})"


def _print_no_feed_answered(console: Console, why: str | None) -> None:
    """The one verdict `run` and `status` share (cycle.no_feed_answered)."""
    if why == "network":
        console.print(
            "[bold red]No feed answered and none could be reached: the network looks "
            "down[/] (or every address is wrong). Nothing was lost; the next cycle tries again."
        )
    elif why == "failed":
        console.print("[bold red]No feed answered[/]: check the network and the feed addresses.")


def print_status(console: Console, config: Config, status: Status) -> None:
    """`tensionwatch status`, kept to a screen: the newest cycles, the feeds that need
    attention, undelivered alerts, the rules versions."""
    size = status.database_bytes / 1e6
    pending = status.pending_batches
    console.print(
        plain(f"Database {status.database} ({size:.1f} MB, schema {status.schema_version}); "
              f"read from {status.read_from.name}; "
              f"{pending} cycle{'s' * (pending != 1)} waiting in pending"
              + (" (the database could not be written: see `tensionwatch run`)" if pending
                 else "")),
        highlight=False,
    )  # fmt: skip
    if status.serve_api:
        ui = status.serve_api.removesuffix("/api")
        console.print(plain(f"Schedule: `tensionwatch serve` is up (Prefect UI at {ui})"))
    else:
        console.print(
            "Schedule: no `tensionwatch serve` is up for this database (cycles run when "
            "`tensionwatch run` is called, or from a Prefect worker)",
            highlight=False,
        )
    if status.cycle_running:
        console.print(plain(f"A cycle is running now: {status.cycle_running}"), highlight=False)
    if status.schema_version < 9:
        console.print(
            "[yellow]This database is from an older tensionwatch[/]: the next cycle upgrades "
            "it; feeds' polling state shows from then on."
        )
    last = status.last_stored_at
    if last is None:
        console.print("No cycle stored yet.")
    else:
        ago = (status.now - last).total_seconds() / 3600
        stalled = ago >= config.alerts.stalled_hours
        console.print(
            Text.assemble(
                f"Last cycle stored {last.astimezone(UTC):%Y-%m-%d %H:%M} UTC, {ago:.1f} h ago",
                (" — no cycle since for longer than alerts.stalled_hours: is the schedule "
                 "running?", "bold red") if stalled else "",
            )
        )  # fmt: skip
    _print_no_feed_answered(console, status.no_feed_answered)

    if status.runs:
        runs = Table(title="Latest cycles (UTC)")
        for column in ("started", "took", "ok", "unchanged", "failed", "not due", "waiting",
                       "retired", "new stories"):  # fmt: skip
            runs.add_column(column, justify="left" if column == "started" else "right")
        for r in status.runs:
            runs.add_row(
                f"{r['started_at'].astimezone(UTC):%m-%d %H:%M}", f"{r['duration_s']:.0f} s",
                *(str(r[k] or 0) for k in ("feeds_ok", "feeds_unchanged", "feeds_failed",
                                            "feeds_not_due", "feeds_waiting", "feeds_retired",
                                            "stories_new")),
            )  # fmt: skip
        console.print(runs)

    shown = 10
    if status.feeds:
        feeds = Table(title="Feeds needing attention")
        for column in ("feed", "state", "next try (UTC)", "why", "last error / new address"):
            feeds.add_column(column, overflow="fold", max_width=60)
        for f in status.feeds[:shown]:
            if f["retired_at"] is not None:
                state = f"retired {f['retired_at'].astimezone(UTC):%Y-%m-%d}"
                when = "never: change its url in config.yaml"
            else:
                failures = f["consecutive_failures"]
                state = (f"failing ×{failures}" if failures
                         else "unreachable" if f["due_reason"] == NETWORK_DOWN
                         else "moved")  # fmt: skip
                when = (f"{f['next_due_at'].astimezone(UTC):%m-%d %H:%M}" if f["next_due_at"]
                        else "next cycle")  # fmt: skip
            failing = f["consecutive_failures"] or f["due_reason"] == NETWORK_DOWN
            detail = f["last_error"] if failing else None
            if f["moved_to"]:
                moved = f"moved to {f['moved_to']}: update config.yaml"
                detail = f"{detail}\n{moved}" if detail else moved
            feeds.add_row(plain(f["feed_id"]), state, when, plain(f["due_reason"] or ""),
                          plain(detail or ""))  # fmt: skip
        console.print(feeds)
        if len(status.feeds) > shown:
            console.print(f"… {len(status.feeds) - shown} more: SELECT * FROM feed_health")
    else:
        console.print("Feeds: none failing, waiting, retired, unreachable or moved.")

    if status.deliveries:
        console.print(
            plain(f"Alert deliveries not sent yet: {len(status.deliveries)}"), style="bold"
        )
        for d in status.deliveries[:5]:
            retry = d["next_attempt_at"]
            console.print(
                plain(f"  {d['title']} → {d['destination']}: {d['state']} after "
                      f"{d['attempts']} tries"
                      + (f", next {retry.astimezone(UTC):%m-%d %H:%M} UTC" if retry else "")
                      + (f" ({d['last_error']})" if d["last_error"] else "")),
                highlight=False,
            )  # fmt: skip
    else:
        console.print("Alerts: every delivery sent (or none due).")

    if status.rules:
        console.print(
            Text.assemble(
                "Rules: ",
                *[
                    piece
                    for i, r in enumerate(status.rules)
                    for piece in (
                        ", " if i else "",
                        plain(f"{r['topic']} {r['rules_version']} "),
                        ("history stale: run `tensionwatch rescore`", "yellow")
                        if r["history_stale"]
                        else ("current", "green"),
                    )
                ],
            )
        )


def cmd_explain(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if (args.story_id is None) == (args.text is None):
        print("tensionwatch explain: give a STORY_ID or --text, not both", file=sys.stderr)
        return 2
    matchers = compile_topics(config.topics)
    console = Console(soft_wrap=True)
    if args.text is not None:
        explain_story(console, matchers, args.text, args.summary, args.language)
        return 0
    story, scores = Store.from_config(config).find_story(args.story_id)
    console.print(plain(story["title"]), highlight=False, style="bold")
    console.print(
        plain(
            f"{story['story_id']} · {story['feed_id']} · {story['event_at']:%Y-%m-%d %H:%M} UTC"
            f" · {story['url'] or 'no link'}"
        ),
        highlight=False,
        style="dim",
    )
    summary = story["summary"]
    if summary is None:
        console.print(
            "Its summary was removed by a prune (retention.story_text_days): the stored scores "
            "were computed with it; what follows reads the headline alone.",
            style="yellow",
            highlight=False,
        )
    elif summary:
        console.print(plain(summary), highlight=False)
    console.print()
    stored: dict[str, list[dict]] = {}
    for row in scores:
        stored.setdefault(row["topic"], []).append(row)
    explain_story(console, matchers, story["title"], summary or "", story["language"], stored)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    items = load_labelled(args.labelled_set)
    results = evaluate(compile_topics(config.topics), items)
    console = Console(soft_wrap=True)
    console.width = max(console.width, 120)  # the table's 9 columns, also when piped
    if not results:
        print(
            f"tensionwatch: {args.labelled_set} labels none of the topics "
            f"{', '.join(config.topics)}",
            file=sys.stderr,
        )
        return 1
    table = Table(title=f"Rules against {args.labelled_set} ({len(items)} items)")
    # The baseline is "both named": relevant = every party of the topic is named anywhere.
    columns = ("topic", "language", "items", "positives", "P", "R", "F1",
               "both named P / R / F1", "Spearman")  # fmt: skip
    for column in columns:
        left = column in ("topic", "language")
        table.add_column(column, justify="left" if left else "right", no_wrap=True)
    for r in results:
        # The topic over the whole set, then per language when the set has several.
        rows = [("all", r)]
        if len(r.by_language) > 1:
            rows += sorted(r.by_language.items())
        for language, e in rows:
            rho = "" if language != "all" else "n/a" if r.spearman is None else f"{r.spearman:.3f}"
            b = e.baseline or e
            positives = e.true_pos + e.false_neg
            figures = (
                (f"{e.precision:.3f}", f"{e.recall:.3f}", f"{e.f1:.3f}")
                if positives or e.false_pos
                else ("–", "–", "–")  # nothing to find and nothing wrongly found
            )
            table.add_row(
                r.topic if language == "all" else "", language, str(e.items), str(positives),
                *figures, f"{b.precision:.3f} / {b.recall:.3f} / {b.f1:.3f}", rho,
            )  # fmt: skip
        if r is not results[-1]:
            table.add_section()
    console.print(table)
    console.print(
        "P precision, R recall, per topic and per language of the items; both named: the "
        "baseline that calls every item naming the topic's parties relevant; Spearman: score "
        "against labelled intensity, positives only"
    )
    for r in results:
        if not r.misses:
            continue
        console.print(
            f"\n[bold]{r.topic}[/]: {r.false_pos} false positives, "
            f"{r.false_neg} false negatives"
            + (f" (first {args.misses} shown)" if len(r.misses) > args.misses else "")
        )
        for miss in r.misses[: args.misses]:
            kind = "missed " if miss.expected else "wrongly"
            console.print(plain(f"  {kind} {miss.item_id}: {miss.title}"), highlight=False)
            console.print(
                plain(f"          {describe_matches(miss.score.matches)}"),
                highlight=False,
                style="dim",
            )
    return 0


def describe_matches(matches: dict) -> str:
    """One line: which actor groups, signals and exclusions fired."""
    parts = []
    for group, terms in matches.get("actors", {}).items():
        parts.append(f"{group}: {', '.join(terms)}")
    if matches.get("missing_groups"):
        parts.append("no " + ", ".join(matches["missing_groups"]))
    signals = [f"{m['term']} {m['points']:+g}" for m in matches.get("signals", [])]
    parts.append("signals: " + (", ".join(signals) if signals else "none"))
    if matches.get("excluded_by"):
        parts.append("excluded by " + ", ".join(matches["excluded_by"]))
    if matches.get("focus"):
        parts.append("focus: " + matches["focus"])
    elif matches.get("no_signal"):
        parts.append("no signal where the parties meet")
    elif matches.get("actors_apart"):
        parts.append("parties not together in the headline or a sentence")
    return " | ".join(parts)


def print_summary(console: Console, config: Config, summary: CycleSummary) -> None:
    """The summary of a stored cycle (summary.summarise) on the terminal."""
    not_asked = ", ".join(
        f"{n} {label}"
        for n, label in (
            (summary.not_due, "not due"),
            (summary.waiting, "waiting"),
            (summary.retired, "retired"),
        )
        if n
    )
    console.print(
        f"[bold]Cycle {summary.run_id[:8]}[/] · {summary.feeds} feeds: "
        f"[green]{summary.ok} ok[/], {summary.unchanged} unchanged, "
        f"[red]{summary.failed} failed[/]"
        + (f", {not_asked}" if not_asked else "")
        + f" · {summary.new_stories} new stories"
        + (
            f" · {summary.pending_stored} earlier cycle(s) stored from pending"
            if summary.pending_stored
            else ""
        )
    )
    for failure in summary.failures:
        line = Text.assemble(
            ("  ✗ ", "red"),
            plain(f"{failure.feed}: {failure.error}"),
            (f" — {_next_try(failure.next_due_at, failure.due_reason)}", "dim")
            if failure.due_reason
            else "",
        )
        console.print(line, highlight=False)
    for feed, warning in summary.warnings:
        line = Text.assemble(("  ! ", "yellow"), plain(f"{feed}: {warning}"))
        console.print(line, highlight=False)
    for note in summary.notes:
        console.print(Text.assemble(("! ", "yellow"), plain(note)), highlight=False)

    for topic in summary.stale_topics:
        console.print(
            f"[yellow]Rules of {topic} changed[/]: stories stored under the old rules are not in "
            f"topic_hourly / topic_daily until `tensionwatch rescore --topic {topic}`."
        )
    _print_no_feed_answered(console, summary.no_feed_answered)
    if summary.feeds and summary.asked == 0:
        console.print(
            f"No feed was due ({not_asked}): each is asked again when its interval, <ttl>, "
            "Cache-Control max-age or backoff runs out (`tensionwatch status` shows when)."
        )
    console.print(
        Text.assemble(
            "Relevant new stories: ",
            *[
                piece
                for i, (t, n) in enumerate(summary.relevant.items())
                for piece in (
                    (", " if i else ""),
                    plain(f"{config.topics[t].title} ({t}) "),
                    (str(n), "bold"),
                )
            ],
        )
    )
    if summary.unscored:
        console.print(
            plain(
                "Not scored, no rules for their language: "
                + "; ".join(
                    f"{topic} {sum(langs.values())} ("
                    + ", ".join(f"{lang} {n}" for lang, n in langs.most_common())
                    + ")"
                    for topic, langs in summary.unscored.items()
                )
            )
        )
    if not summary.top:
        return
    table = Table(title=f"Top {len(summary.top)} new stories by score", show_lines=False)
    table.add_column("score", justify="right")
    table.add_column("topic")
    table.add_column("title", overflow="fold", max_width=60)
    table.add_column("matched terms", overflow="fold", max_width=50)
    for story in summary.top:
        actors = json.dumps(story.actors, ensure_ascii=False)
        table.add_row(
            f"{story.score:.1f}",
            story.topic,
            plain(story.title),
            Text.assemble(plain(", ".join(story.terms)), "\n", (strip_controls(actors), "dim")),
        )
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
