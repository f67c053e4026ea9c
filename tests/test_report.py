"""`tensionwatch report` renders in headless Chromium: charts with data, and hostile text as text.

Needs Debian's `chromium` (.ci/run installs it)."""

import re
import shutil
import subprocess
from datetime import timedelta

import duckdb
import pytest

from tensionwatch.cli import main
from tests.test_views import DAY1, index_db  # noqa: F401  (the fixture: real cycles)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = "<script>document.documentElement.setAttribute('data-pwned','1')</script><b>bold</b>"


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    if not CHROMIUM:
        pytest.skip("needs Debian's chromium (apt-get install chromium); .ci/run installs it")
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_report_renders_its_charts_and_shows_a_hostile_headline_as_text(index_db, tmp_path, capsys):  # noqa: F811
    # The database can hold anything: a headline that is markup (a feed can double-encode it).
    # Both where the story is kept and where the trend tables copied it for top_stories.
    with duckdb.connect(str(index_db.database_path)) as con:
        for table in ("stories", "top_story_ranks"):
            con.execute(
                f"UPDATE {table} SET title = ? || title, url = 'javascript:alert(1)' "
                "WHERE title LIKE 'Iran fires missiles%'",
                [HOSTILE],
            )
        # A spike alert on DAY1 (the outbox as a cycle's detection leaves it).
        con.execute(
            "INSERT INTO alerts (alert_id, kind, topic, window_start, window_end, window_hours,"
            " metric, severity, z, why, title, body_text, body_markdown, detected_at)"
            " VALUES ('a1', 'spike', 'iran_israel', ?, ?, 6, 'share', 'high', 5.2, 'new spike',"
            " 't', 't', 't', now())",
            [DAY1 + timedelta(hours=6), DAY1 + timedelta(hours=12)],
        )
    (index_db.database_path.with_name("tw.read.duckdb")).unlink(missing_ok=True)
    output = tmp_path / "report.html"
    args = ["report", "--config", str(index_db.base_dir / "config.yaml"), "--output", str(output)]
    assert main([*args, "--days", "30"]) == 0
    page = output.read_text(encoding="utf-8")
    assert "http://" not in page.replace("https://news.test", "") and "<link" not in page
    assert "<script" not in page  # nothing that runs, and no way to load anything

    rendered = chromium("--dump-dom", output.as_uri())
    assert rendered.returncode == 0, rendered.stderr
    dom = rendered.stdout
    assert 'data-pwned="1"' not in dom and "<b>bold</b>" not in dom
    assert "&lt;script&gt;document.documentElement.setAttribute" in dom  # shown as text
    assert not [href for href in re.findall(r'href="([^"]*)"', dom) if "javascript" in href]

    def section(topic):
        return dom.split(f'data-topic="{topic}"', 1)[1].split("</section>", 1)[0]

    iran_israel = section("iran_israel")
    points = re.findall(r'<circle class="point" cx="([\d.]+)" cy="([\d.]+)"', iran_israel)
    assert len(points) == 2  # a point per day with stories read: DAY1, DAY3
    assert re.search(r'<polyline class="index-line" points="[\d.]+,[\d.]+ [\d.]+', iran_israel)
    assert len(re.findall(r'<rect class="bar act"', iran_israel)) >= 1  # the threat / act split
    assert 'class="gap"' in iran_israel  # days nobody polled are shaded
    (mark,) = re.findall(r'<path class="alert high"[^>]*><title>([^<]*)</title>', iran_israel)
    assert mark.startswith(f"{DAY1:%Y-%m-%d} 06:00 UTC, 6 h: high spike, z 5.2")
    assert 'class="alert' not in section("tr_ru")
    assert "no index to draw" in section("tr_ru")  # nothing tense yet: said, not drawn flat
    assert "strikes air defence" in dom and "haber" in dom  # top events, feed health

    shot = tmp_path / "report.png"
    rendered = chromium(f"--screenshot={shot}", "--window-size=1000,1400", output.as_uri())
    assert rendered.returncode == 0 and shot.stat().st_size > 10_000
