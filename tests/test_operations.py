"""`tensionwatch status` and `tensionwatch feeds check` through the real CLI (cli.main), over
real cycles against the feed server on 127.0.0.1 and a real DuckDB file."""

import socket
from datetime import UTC, datetime, timedelta

import pytest

from tensionwatch import __version__
from tensionwatch.cli import main
from tensionwatch.config import load_config
from tensionwatch.cycle import new_batch
from tensionwatch.guard import cycle_lock
from tensionwatch.store import Store, migrations
from tests.conftest import old_database, write_config
from tests.feedserver import Route
from tests.test_polite_polling import VIEWS_OF_008, cycle

WIDE = {"COLUMNS": "200"}  # a wide terminal: each row on one line


@pytest.fixture
def wide(monkeypatch):
    for name, value in WIDE.items():
        monkeypatch.setenv(name, value)


def test_status_without_a_database_says_so_in_one_line_and_exits_1(tmp_path, capsys):
    path = write_config(tmp_path, [{"name": "desk", "url": "http://127.0.0.1:9/rss"}])
    assert main(["status", "--config", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tensionwatch: no database at ")


def test_status_shows_cycles_and_the_feeds_that_need_attention_with_when_and_why(
    feed_server, tmp_path, capsys, wide
):
    feed_server.routes["/world.xml"] = Route.file("world_rss20.xml")
    feed_server.routes["/down.xml"] = Route(status=500)
    feed_server.routes["/gone.xml"] = Route(status=410)
    feed_server.routes["/busy.xml"] = Route(status=429, extra_headers={"Retry-After": "7200"})
    feed_server.routes["/old.xml"] = Route(redirect="/new.xml", redirect_status=308)
    feed_server.routes["/new.xml"] = Route.file("region_atom.xml")
    names = {"world": "/world.xml", "down": "/down.xml", "gone": "/gone.xml",
             "busy": "/busy.xml", "old": "/old.xml"}  # fmt: skip
    path = write_config(
        tmp_path, [{"name": n, "url": feed_server.url(p)} for n, p in names.items()],
        fetch={"retries": 0},
    )  # fmt: skip
    config = load_config(path)
    cycle(config)
    cycle(config, datetime.now(UTC) + timedelta(minutes=5))  # nobody is due yet

    assert main(["status", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Latest cycles (UTC)" in out and "0 cycles waiting in pending" in out
    assert f"schema {max(v for v, _, _ in migrations())}" in out and "MB" in out
    assert "Feeds needing attention" in out
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 4}
    assert "retired" in lines["gone"] and "never: change its url in config.yaml" in lines["gone"]
    assert "failing ×1" in lines["down"] and "backoff after 1 failure" in lines["down"]
    assert "HTTP 500 Internal Server Error" in lines["down"]
    assert "retry-after" in lines["busy"]
    assert f"moved to {feed_server.url('/new.xml')}" in lines["old"]
    assert "world" not in lines
    assert "iran_israel" in out and "current" in out
    assert "network looks down" not in out
    assert "no `tensionwatch serve` is up for this database" in out
    assert "A cycle is running now" not in out

    with cycle_lock(config.database_path, "a cycle"):  # as a running cycle holds it
        assert main(["status", "--config", str(path)]) == 0
    assert "A cycle is running now: a cycle, pid " in capsys.readouterr().out


def test_status_says_when_the_network_looked_down_and_what_waits_in_pending(tmp_path, capsys, wide):
    def closed_port():
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    feeds = [{"name": f"f{n}", "url": f"http://127.0.0.1:{closed_port()}/rss"} for n in range(2)]
    path = write_config(tmp_path, feeds, fetch={"retries": 0})
    config = load_config(path)
    cycle(config)
    Store.from_config(config).queue.keep(new_batch(config))  # not stored yet
    assert main(["status", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "the network looks down" in out
    assert "1 cycle waiting in pending" in out
    assert "network down" in out  # why the two feeds are asked again at their interval


def test_status_reads_a_database_from_before_polling(feed_server, tmp_path, capsys, wide):
    path = write_config(tmp_path, [{"name": "desk", "url": feed_server.url("/x.xml")}])
    with old_database(tmp_path / "tw.duckdb", 8) as con:
        con.execute(VIEWS_OF_008)
        con.execute("INSERT INTO runs VALUES ('r0', now(), now(), now(), 1, 1, 0, 0, 3, 3, '{}')")
    assert main(["status", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "from an older tensionwatch" in out and "Traceback" not in out
    assert "Latest cycles" in out and "No cycle stored yet" not in out


def test_feeds_check_asks_every_feed_once_and_writes_nothing(feed_server, tmp_path, capsys, wide):
    feed_server.routes["/world.xml"] = Route.file("world_rss20.xml", conditional=True)
    feed_server.routes["/login.html"] = Route.file("not_a_feed.html", content_type="text/html")
    feed_server.routes["/old.xml"] = Route(redirect="/world.xml", redirect_status=301)
    feeds = [
        {"name": "world", "url": feed_server.url("/world.xml")},
        {"name": "missing", "url": feed_server.url("/missing.xml")},
        {"name": "login", "url": feed_server.url("/login.html")},
        {"name": "old", "url": feed_server.url("/old.xml")},
    ]
    path = write_config(tmp_path, feeds, fetch={"contact": "mailto:desk@example.org"})
    config = load_config(path)
    cycle(config)  # a stored cycle: check ignores what it remembers (validators, due times)
    before = len(feed_server.requests)

    assert main(["feeds", "check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    asked = feed_server.requests[before:]
    assert sorted(r.path for r in asked) == [
        "/login.html", "/missing.xml", "/old.xml", "/world.xml", "/world.xml"
    ]  # fmt: skip
    assert all("If-None-Match" not in r.headers for r in asked)
    assert {r.headers["User-Agent"] for r in asked} == {
        f"tensionwatch/{__version__} (+mailto:desk@example.org)"
    }
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 4}
    assert "200" in rows["world"] and "application/rss+xml" in rows["world"]
    assert "│       9 │" in rows["world"]  # entries
    assert "2024-08-02 07:40" in rows["world"]  # the newest pubDate, in UTC
    assert "404" in rows["missing"] and "HTTP 404 Not Found" in rows["missing"]
    assert "text/html" in rows["login"] and "an HTML page, not a feed" in rows["login"]
    assert "4 feeds asked: 2 answered with a feed, 2 failed." in out
    assert "moved permanently to" in out
    runs = Store.from_config(config)
    with runs.connect(read_only=True) as con:  # nothing written
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(1,)]


def test_feeds_check_with_a_bad_config_exits_2(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(
        "feeds: [{name: desk, url: 'http://127.0.0.1:9/rss'}]\ntopics: {}\n"
        "fetch: {contact: 'call me (maybe)'}\n",
        encoding="utf-8",
    )
    assert main(["feeds", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "fetch.contact: must be an http(s):// or mailto: address" in err
