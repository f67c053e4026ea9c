"""The Prefect flow and `tensionwatch run`, under Prefect's test harness."""

import socket
from pathlib import Path

import duckdb
import prefect.settings
import pytest
from prefect.testing.utilities import prefect_test_harness

from tensionwatch.cli import main
from tensionwatch.serving import load_flow
from tests.conftest import write_config
from tests.feedserver import Route


@pytest.fixture(scope="module", autouse=True)
def prefect_harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def config_path(feed_server, tmp_path):
    feed_server.routes["/world.xml"] = Route.file("world_rss20.xml", conditional=True)
    feed_server.routes["/haber.xml"] = Route.file("haber_tr.xml")
    feed_server.routes["/down.xml"] = Route(status=500)
    feeds = [
        {"name": "world", "url": feed_server.url("/world.xml"), "language": "en"},
        {"name": "haber", "url": feed_server.url("/haber.xml"), "language": "tr"},
        {"name": "down", "url": feed_server.url("/down.xml"), "language": "en"},
    ]
    return write_config(tmp_path, feeds)


def test_flow_runs_a_cycle_and_returns_its_report(config_path):
    monitor = load_flow("monitor.py", "monitor")

    state = monitor(config_path=str(config_path), return_state=True)
    assert state.is_completed()
    result = state.result()
    assert result.summary.new_stories == 15
    with duckdb.connect(str(config_path.parent / "tw.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM stories").fetchone() == (15,)
        assert con.execute("SELECT count(*) FROM fetches WHERE outcome = 'error'").fetchone() == (
            1,
        )


def test_run_command_prints_the_summary_and_exits_0_despite_a_failed_feed(
    config_path, feed_server, capsys
):
    assert main(["run", "--config", str(config_path)]) == 0
    out = capsys.readouterr().out
    assert "2 ok, 0 unchanged, 1 failed · 15 new stories" in out
    assert "down: HTTP 500 Internal Server Error (after 2 attempts)" in out
    assert "(iran_israel) 5" in out and "(tr_ru) 4" in out
    assert "Top 5 new stories by score" in out
    assert "Traceback" not in out

    # Run again at once: no feed is due (polling.min_interval_minutes; the failed one backs
    # off), so none is asked, and the summary says so.
    asked = len(feed_server.requests)
    assert main(["run", "--config", str(config_path)]) == 0
    out = capsys.readouterr().out
    assert "0 ok, 0 unchanged, 0 failed, 2 not due, 1 waiting · 0 new stories" in out
    assert "No feed was due" in out
    assert len(feed_server.requests) == asked


def test_run_command_exits_1_with_one_line_when_nothing_can_be_stored(config_path, capsys):
    db = config_path.parent / "tw.duckdb"
    db.mkdir()  # a folder where the database file should be: DuckDB cannot open it
    assert main(["run", "--config", str(config_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("tensionwatch: nothing stored: cannot open")
    assert "1 fetched cycle(s) kept in pending" in err[0]


def _closed_port() -> int:
    with socket.socket() as probe:  # bound, never listening, closed on return: nobody answers
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_with_no_network_the_cycle_is_stored_and_says_the_network_looks_down(tmp_path, capsys):
    feeds = [
        {"name": f"feed_{n}", "url": f"http://127.0.0.1:{_closed_port()}/rss.xml"} for n in range(3)
    ]
    path = write_config(tmp_path, feeds)
    assert main(["run", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "0 ok, 0 unchanged, 3 failed" in out
    assert "the network looks down" in out and "Traceback" not in out
    with duckdb.connect(str(tmp_path / "tw.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT outcome, error FROM fetches").fetchall()
    assert len(rows) == 3 and all(o == "error" and e.startswith("cannot connect") for o, e in rows)


def _prefect_database_bytes() -> bytes:
    url = prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
    folder = Path(url.split("///", 1)[1]).parent
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())


def test_a_token_from_the_environment_never_reaches_the_database_prefect_or_output(
    feed_server, tmp_path, monkeypatch, capsys
):
    token = "tw-test-token-5f1c9e"
    monkeypatch.setenv("TW_FEED_TOKEN", token)
    # The feed redirects to an address that carries the token too, as signed URLs do.
    feed_server.routes[f"/private.xml?token={token}"] = Route(
        redirect=feed_server.url(f"/signed.xml?token={token}")
    )
    feed_server.routes[f"/signed.xml?token={token}"] = Route.file("world_rss20.xml")
    feed_server.routes["/failing.xml?token=" + token] = Route(status=500, body=token.encode())
    # A private feed that echoes its token in every item's link and guid.
    echo = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Echo</title>'
        f"<item><title>Members' briefing</title><link>https://ex.example/b?token={token}</link>"
        f"<guid>https://ex.example/b?token={token}</guid></item></channel></rss>"
    )
    feed_server.routes[f"/echo.xml?token={token}"] = Route(body=echo.encode())
    feeds = [
        {"name": "private", "url": feed_server.url("/private.xml?token=${TW_FEED_TOKEN}")},
        {"name": "failing", "url": feed_server.url("/failing.xml?token=${TW_FEED_TOKEN}")},
        {"name": "echo", "url": feed_server.url("/echo.xml?token=${TW_FEED_TOKEN}")},
    ]
    path = write_config(tmp_path, feeds)
    assert main(["run", "--config", str(path)]) == 0
    captured = capsys.readouterr()
    assert token not in captured.out + captured.err
    assert "2 ok, 0 unchanged, 1 failed · 10 new stories" in captured.out

    with duckdb.connect(str(tmp_path / "tw.duckdb"), read_only=True) as con:
        text_columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type IN ('VARCHAR', 'JSON') AND table_schema = 'main'"
        ).fetchall()
        for table, column in text_columns:
            leaks = con.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::VARCHAR LIKE ?', [f"%{token}%"]
            ).fetchall()
            assert leaks == [(0,)], f"{table}.{column} holds the token"
        assert con.execute("SELECT url FROM feeds ORDER BY feed_id").fetchall() == [
            (feed_server.url("/echo.xml?token=${TW_FEED_TOKEN}"),),
            (feed_server.url("/failing.xml?token=${TW_FEED_TOKEN}"),),
            (feed_server.url("/private.xml?token=${TW_FEED_TOKEN}"),),
        ]
        assert con.execute(
            "SELECT final_url FROM fetches WHERE feed_id = 'private'"
        ).fetchall() == [(feed_server.url("/signed.xml?token=${TW_FEED_TOKEN}"),)]
    assert token.encode() not in _prefect_database_bytes()
    assert b"private.xml" in _prefect_database_bytes() or b"tensionwatch-monitor" in (
        _prefect_database_bytes()
    )  # the check looked at the database the flow run was recorded in


def test_a_headline_with_rich_markup_is_printed_as_text_and_the_run_exits_0(
    feed_server, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: each headline on one line
    headlines = [
        "LIVE [/] Israel strikes Iran",
        "Iran [video] threatens Israel",
        "[bold]x[/bold] @channel",
    ]
    items = "".join(
        f"<item><title>{h} after missile attack</title><link>https://ex.example/{n}</link></item>"
        for n, h in enumerate(headlines)
    )
    feed_server.routes["/live.xml"] = Route(
        body=f'<?xml version="1.0"?><rss version="2.0"><channel><title>Live</title>{items}'
        "</channel></rss>".encode()
    )
    path = write_config(tmp_path, [{"name": "live", "url": feed_server.url("/live.xml")}])
    assert main(["run", "--config", str(path), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "Traceback" not in out
    for headline in ("LIVE [/] Israel strikes Iran", "Iran [video] threatens Israel"):
        assert headline in out


def test_a_cycle_ends_with_detection_and_a_dry_run_records_none_of_it(config_path, capsys):
    db = config_path.parent / "tw.duckdb"
    assert main(["run", "--config", str(config_path), "--dry-run"]) == 0
    assert "Dry run: not recorded or sent. Alerts: none" in capsys.readouterr().out
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM alert_states").fetchone() == (0,)

    monitor = load_flow("monitor.py", "monitor")

    result = monitor(config_path=str(config_path), return_state=True).result()
    assert result.alerts_error is None and result.alerts.alerts == []
    assert not result.alerts.dry_run
    with duckdb.connect(str(db), read_only=True) as con:
        judged = con.execute("SELECT topic FROM alert_states ORDER BY 1").fetchall()
    assert judged == [("",), ("iran_israel",), ("tr_ru",)]  # '' is the pipeline's health
