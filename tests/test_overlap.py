"""One cycle at a time per database, however cycles are started (tensionwatch.guard).

Real `tensionwatch run` processes against a feed server on 127.0.0.1 that answers slowly, so a
first cycle is still fetching when a second starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from tests.conftest import write_config
from tests.feedserver import Route

TENSIONWATCH = str(Path(sys.executable).with_name("tensionwatch"))


def _start_run(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [TENSIONWATCH, "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
    )


def _wait_for_request(feed_server, path: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not feed_server.requests_to(path):
        assert time.monotonic() < deadline, f"nobody asked for {path}"
        time.sleep(0.1)


def _runs(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT count(*) FROM runs").fetchone()[0]


def _slow_config(feed_server, tmp_path: Path, delay: float) -> Path:
    feed_server.routes["/slow.xml"] = Route.file("world_rss20.xml", delay=delay)
    # Generous fetch limits: the feed is slow on purpose, not failing.
    return write_config(
        tmp_path,
        [{"name": "slow", "url": feed_server.url("/slow.xml")}],
        fetch={"timeout_seconds": 30, "deadline_seconds": 60},
    )


def test_a_run_started_while_a_cycle_runs_does_nothing_and_says_why(feed_server, tmp_path):
    config = _slow_config(feed_server, tmp_path, delay=6)
    first = _start_run(config)
    try:
        _wait_for_request(feed_server, "/slow.xml")  # the first cycle holds the lock
        second = subprocess.run(
            [TENSIONWATCH, "run", "--config", str(config)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "another cycle is running" in lines[0], second.stderr
        assert f"pid {first.pid}" in lines[0]  # it says who holds the database
        assert "Traceback" not in second.stderr
    finally:
        out, err = first.communicate(timeout=180)
    assert first.returncode == 0, err
    assert len(feed_server.requests_to("/slow.xml")) == 1  # the second cycle fetched nothing
    assert _runs(tmp_path / "tw.duckdb") == 1

    feed_server.routes["/slow.xml"].delay = 0
    third = subprocess.run(
        [TENSIONWATCH, "run", "--config", str(config)], capture_output=True, text=True, timeout=120
    )
    assert third.returncode == 0, third.stderr  # the lock went with the first cycle
    assert _runs(tmp_path / "tw.duckdb") == 2


def test_a_cycle_killed_while_it_holds_the_lock_leaves_no_stale_lock(feed_server, tmp_path):
    config = _slow_config(feed_server, tmp_path, delay=30)
    first = _start_run(config)
    _wait_for_request(feed_server, "/slow.xml")
    first.send_signal(signal.SIGKILL)  # no clean-up runs: only the kernel lets go of the lock
    first.communicate(timeout=30)

    feed_server.routes["/slow.xml"].delay = 0
    again = subprocess.run(
        [TENSIONWATCH, "run", "--config", str(config)], capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert "1 feeds: 1 ok" in again.stdout
    assert _runs(tmp_path / "tw.duckdb") == 1  # the killed cycle stored nothing


def test_the_flow_itself_refuses_a_second_cycle_on_the_same_database(tmp_path):
    """The guard sits in the flow, not only in `run`: a deployment started by a worker or a
    second serve meets it too. Here the lock is held by another process."""
    from tensionwatch.guard import guard_path

    db = tmp_path / "tw.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from tensionwatch.guard import cycle_lock\n"
         f"with cycle_lock(Path({str(db)!r}), 'a test holder'):\n"
         "    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert "a test holder" in guard_path(db).read_text()
        from prefect.testing.utilities import prefect_test_harness

        from tensionwatch.serving import load_flow

        config = write_config(tmp_path, [{"name": "x", "url": "http://127.0.0.1:9/x.xml"}])
        with prefect_test_harness(server_startup_timeout=120):
            state = load_flow("monitor.py", "monitor")(config_path=str(config), return_state=True)
        assert state.is_cancelled()
        result = state.result(raise_on_failure=False)
        assert result.skipped and "a test holder" in result.error
        assert not db.exists()  # nothing was fetched or stored
    finally:
        holder.kill()
        holder.communicate()  # closes its pipe too
