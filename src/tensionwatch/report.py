"""`tensionwatch report`: one self-contained HTML page of the trends, no network needed.

Per topic: the daily index with its 7-day rolling mean, the threat / act split, days of poor
coverage shaded (unknown, not calm), a marker on each day a spike alert fired, and under it
the top events of recent days with links; then the feed-health table. The charts are inline SVG drawn here: no script, no stylesheet
or font from elsewhere. Every text from a feed or the database is escaped (html.escape): a
headline is data, never markup.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from tensionwatch.store import Store, load_statements, rows_as_dicts, sql_dir

WIDTH, HEIGHT, PAD = 860, 220, 40


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    index: float | None
    mean_7d: float | None
    threat: float
    act: float
    relevant: int
    events: int
    poor_coverage: bool


def read_report_data(store: Store, days: int) -> dict[str, Any]:
    sql = load_statements(sql_dir() / "report.sql")
    with store.reading() as con:

        def rows(name: str) -> list[dict[str, Any]]:
            params = {"days": days} if "$days" in sql[name] else None
            return rows_as_dicts(con.execute(sql[name], params))

        trend = rows("trend")
        top = rows("top_events")
        health = rows("feed_health")
        alerts = rows("alerts")
    topics: dict[str, list[Day]] = {}
    for r in trend:
        topics.setdefault(r["topic"], []).append(
            Day(
                r["day"],
                r["index"],
                r["mean_7d"],
                r["threat_sum"],
                r["act_sum"],
                r["relevant_stories"],
                r["events"],
                r["poor_coverage"],
            )
        )
    return {"topics": topics, "top": top, "health": health, "alerts": alerts}


def render(data: dict[str, Any], days: int, generated: datetime | None = None) -> str:
    generated = generated or datetime.now(UTC)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>tensionwatch report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>tensionwatch</h1>",
        f"<p class='meta'>Last {days} days, generated {generated:%Y-%m-%d %H:%M} UTC. Index: "
        "the share of stories that are tense, 100 = the base period's mean. Grey days: poor "
        "coverage (few feeds answered, or none polled): unknown, not calm.</p>",
    ]
    if not data["topics"]:
        parts.append("<p>No stories stored yet.</p>")
    for topic, series in data["topics"].items():
        parts.append(f"<section class='topic' data-topic='{_e(topic)}'><h2>{_e(topic)}</h2>")
        alerts = [a for a in data.get("alerts", []) if a["topic"] == topic]
        parts.append(_index_chart(series, alerts))
        parts.append(_split_chart(series))
        top = [t for t in data["top"] if t["topic"] == topic]
        parts.append(_top_table(top))
        parts.append("</section>")
    parts.append("<section><h2>Feed health</h2>")
    parts.append(_health_table(data["health"]))
    parts.append("</section></body></html>")
    return "".join(parts)


def write_report(store: Store, days: int, output: Path) -> int:
    data = read_report_data(store, days)
    output.write_text(render(data, days), encoding="utf-8")
    return sum(len(s) for s in data["topics"].values())


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _scale(series: list[Day], values: list[float]) -> tuple[Any, Any]:
    n = max(len(series) - 1, 1)
    top = max([v for v in values if v is not None] + [1.0])

    def x(i: int) -> float:
        return PAD + (WIDTH - 2 * PAD) * i / n

    def y(v: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * v / top

    return x, y


def _shading(series: list[Day], x: Any) -> str:
    step = (WIDTH - 2 * PAD) / max(len(series) - 1, 1)
    return "".join(
        f"<rect class='gap' x='{x(i) - step / 2:.1f}' y='{PAD}' width='{step:.1f}' "
        f"height='{HEIGHT - 2 * PAD}'><title>{d.day}: poor coverage</title></rect>"
        for i, d in enumerate(series)
        if d.poor_coverage
    )


def _axis(series: list[Day], x: Any, top_label: str) -> str:
    first, last = series[0].day, series[-1].day
    return (
        f"<line class='axis' x1='{PAD}' y1='{HEIGHT - PAD}' x2='{WIDTH - PAD}' "
        f"y2='{HEIGHT - PAD}'/>"
        f"<text x='{PAD}' y='{HEIGHT - 12}'>{first}</text>"
        f"<text x='{WIDTH - PAD}' y='{HEIGHT - 12}' text-anchor='end'>{last}</text>"
        f"<text x='4' y='{PAD}'>{_e(top_label)}</text>"
    )


def _alert_marks(series: list[Day], alerts: list[dict[str, Any]], x: Any) -> str:
    """A triangle over each day a spike alert fired, its window, severity and z on hover."""
    position = {d.day: i for i, d in enumerate(series)}
    marks = []
    for a in alerts:
        if a["day"] not in position:
            continue
        cx = x(position[a["day"]])
        label = (
            f"{a['window_start']:%Y-%m-%d %H:%M} UTC, {a['window_hours']:g} h: "
            f"{a['severity']} spike, z {a['z']:.1f} ({a['why']})"
        )
        marks.append(
            f"<path class='alert {_e(a['severity'])}' d='M{cx - 6:.1f},{PAD - 16} "
            f"L{cx + 6:.1f},{PAD - 16} L{cx:.1f},{PAD - 5} Z'><title>{_e(label)}</title></path>"
        )
    return "".join(marks)


def _index_chart(series: list[Day], alerts: list[dict[str, Any]] | None = None) -> str:
    if not any(d.index for d in series):
        # The base period holds no tense story: the index (share / its mean) is undefined.
        return "<p class='none'>No tense stories in the base period yet: no index to draw.</p>"
    values = [d.index or 0.0 for d in series] + [d.mean_7d or 0.0 for d in series]
    x, y = _scale(series, values)
    points = " ".join(
        f"{x(i):.1f},{y(d.index):.1f}" for i, d in enumerate(series) if d.index is not None
    )
    mean = " ".join(
        f"{x(i):.1f},{y(d.mean_7d):.1f}" for i, d in enumerate(series) if d.mean_7d is not None
    )
    dots = "".join(
        f"<circle class='point' cx='{x(i):.1f}' cy='{y(d.index):.1f}' r='2.5'>"
        f"<title>{d.day}: index {d.index:.0f}, {d.relevant} stories, {d.events} events"
        "</title></circle>"
        for i, d in enumerate(series)
        if d.index is not None
    )
    top = max(values + [1.0])
    return (
        f"<svg class='chart index' viewBox='0 0 {WIDTH} {HEIGHT}' role='img' "
        f"aria-label='daily index'>{_shading(series, x)}{_axis(series, x, f'{top:.0f}')}"
        f"<polyline class='index-line' points='{points}'/>"
        f"<polyline class='mean-line' points='{mean}'/>{dots}"
        f"{_alert_marks(series, alerts or [], x)}</svg>"
        "<p class='legend'><span class='key index-key'></span>daily index "
        "<span class='key mean-key'></span>7-day mean "
        "<span class='alert-key'>▼</span> a spike alert fired</p>"
    )


def _split_chart(series: list[Day]) -> str:
    if not series:
        return ""
    x, y = _scale(series, [d.threat + d.act for d in series])
    bar = (WIDTH - 2 * PAD) / max(len(series), 1) * 0.7
    bars = []
    for i, d in enumerate(series):
        base = HEIGHT - PAD
        for kind, value in (("act", d.act), ("threat", d.threat)):
            if value > 0:
                top = y(value) - (HEIGHT - PAD - base)
                bars.append(
                    f"<rect class='bar {kind}' x='{x(i) - bar / 2:.1f}' y='{top:.1f}' "
                    f"width='{bar:.1f}' height='{base - top:.1f}'>"
                    f"<title>{d.day}: {kind} {value:.1f}</title></rect>"
                )
                base = top
    total = max([d.threat + d.act for d in series] + [1.0])
    return (
        f"<svg class='chart split' viewBox='0 0 {WIDTH} {HEIGHT}' role='img' "
        f"aria-label='threat and act points'>{_shading(series, x)}"
        f"{_axis(series, x, f'{total:.0f}')}{''.join(bars)}</svg>"
        "<p class='legend'><span class='key act-key'></span>act points "
        "<span class='key threat-key'></span>threat points</p>"
    )


def _top_table(top: list[dict[str, Any]]) -> str:
    if not top:
        return "<p class='none'>No relevant stories in these days.</p>"
    rows = "".join(
        "<tr>"
        f"<td>{_e(t['day'])}</td><td class='num'>{t['score']:g}</td>"
        f"<td class='num'>{t['outlets']}</td><td>{_e(t['outlet'])}</td>"
        f"<td>{_link(t['url'], t['title'])}</td><td>{_e(', '.join(t['terms'] or []))}</td>"
        "</tr>"
        for t in top
    )
    return (
        "<h3>Top events</h3><table class='top'><tr><th>day</th><th>score</th>"
        f"<th>outlets</th><th>first outlet</th><th>headline</th><th>terms</th></tr>{rows}</table>"
    )


def _link(url: str | None, text: str) -> str:
    if url and url.lower().startswith(("http://", "https://")):
        return f"<a href='{_e(url)}' rel='noopener noreferrer'>{_e(text)}</a>"
    return _e(text)  # a javascript: or data: link from a feed is shown as text


def _health_table(health: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr class='{'failing' if h['consecutive_failures'] else 'ok'}'>"
        f"<td>{_e(h['feed_id'])}</td><td>{_e(h['outlet'])}</td>"
        f"<td>{_e(_when(h['last_ok_at']))}</td>"
        f"<td class='num'>{h['consecutive_failures']}</td><td>{_e(h['last_error'])}</td>"
        f"<td class='num'>{(h['stories_per_day'] or 0):.1f}</td></tr>"
        for h in health
    )
    return (
        "<table class='health'><tr><th>feed</th><th>outlet</th><th>last answered</th>"
        "<th>failures in a row</th><th>last error</th><th>stories/day</th></tr>"
        f"{rows}</table>"
    )


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "never"


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:900px;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}
.meta,.legend,.none{color:#555;font-size:.9em}
svg.chart{width:100%;height:auto;background:#fafafa;border:1px solid #eee}
svg text{font-size:11px;fill:#555}
.axis{stroke:#999}.gap{fill:#ddd;opacity:.7}
.index-line{fill:none;stroke:#c0392b;stroke-width:1.5}
.mean-line{fill:none;stroke:#2c3e50;stroke-width:2;stroke-dasharray:4 3}
.point{fill:#c0392b}.alert{fill:#8e44ad}.alert-key{color:#8e44ad;margin-left:12px}.bar.act{fill:#c0392b}.bar.threat{fill:#e8a33d}
.key{display:inline-block;width:14px;height:4px;margin:0 4px 2px 12px;vertical-align:middle}
.index-key{background:#c0392b}.mean-key{background:#2c3e50}
.act-key{background:#c0392b}.threat-key{background:#e8a33d}
table{border-collapse:collapse;width:100%;margin:.5em 0;font-size:.9em}
td,th{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top}
td.num{text-align:right}tr.failing td{background:#fdecea}
"""
