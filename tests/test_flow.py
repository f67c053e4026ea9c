"""The Prefect flow and `tensionwatch run`, under Prefect's test harness."""

import duckdb
import pytest
from prefect.testing.utilities import prefect_test_harness

from tensionwatch.cli import main
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
    from flows.monitor import monitor

    state = monitor(config_path=str(config_path), return_state=True)
    assert state.is_completed()
    result = state.result()
    assert len(result.report.new_story_ids) == 15
    with duckdb.connect(str(config_path.parent / "tw.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM stories").fetchone() == (15,)
        assert con.execute("SELECT count(*) FROM fetches WHERE outcome = 'error'").fetchone() == (
            1,
        )


def test_run_command_prints_the_summary_and_exits_0_despite_a_failed_feed(config_path, capsys):
    assert main(["run", "--config", str(config_path)]) == 0
    out = capsys.readouterr().out
    assert "3 feeds: 1 ok" not in out  # two feeds answered, one failed
    assert "2 ok, 0 unchanged, 1 failed · 15 new stories" in out
    assert "down: HTTP 500 Internal Server Error (after 2 attempts)" in out
    assert "(iran_israel) 5" in out and "(tr_ru) 4" in out
    assert "Top 5 new stories by score" in out
    assert "Traceback" not in out

    assert main(["run", "--config", str(config_path)]) == 0
    assert "0 ok, 2 unchanged, 1 failed · 0 new stories" in capsys.readouterr().out


def test_run_command_exits_1_with_one_line_when_nothing_can_be_stored(config_path, capsys):
    db = config_path.parent / "tw.duckdb"
    db.mkdir()  # a folder where the database file should be: DuckDB cannot open it
    assert main(["run", "--config", str(config_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("tensionwatch: nothing stored: cannot open")
    assert "1 fetched cycle(s) kept in pending" in err[0]
