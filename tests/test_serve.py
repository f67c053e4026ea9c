"""`tensionwatch serve` against a real Prefect server it starts itself (127.0.0.1, a free port,
PREFECT_HOME in a temporary folder), and `tensionwatch run` beside it. Slow (a Prefect server
starts in each test); nothing is mocked and nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import httpx

from tests.conftest import write_config
from tests.feedserver import Route

TENSIONWATCH = str(Path(sys.executable).with_name("tensionwatch"))
RECORD = Path("data") / "prefect" / "tensionwatch-server.json"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_env() -> dict[str, str]:
    # No PREFECT_API_URL: serve must start its own server. No PREFECT_* setting left behind by
    # another test in this process either (an in-process `run` sets the logging level).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def wait_for(what: str, check: Callable[[], Any], timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def record(folder: Path) -> dict | None:
    try:
        return json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None


def api_post(api: str, path: str, body: dict) -> list[dict]:
    try:
        response = httpx.post(f"{api}{path}", json=body, timeout=10)
    except httpx.HTTPError:
        return []  # the server is restarting: ask again
    return response.json() if response.status_code == 200 else []


def flow_runs(api: str, flow: str) -> list[dict]:
    return api_post(api, "/flow_runs/filter", {"flows": {"name": {"any_": [flow]}}, "limit": 100})


def completed(runs: list[dict], scheduled: bool) -> list[dict]:
    return [
        r
        for r in runs
        if r["state_type"] == "COMPLETED" and (r["deployment_id"] is not None) == scheduled
    ]


@contextmanager
def serving(config: Path, folder: Path, every: str) -> Iterator[subprocess.Popen[str]]:
    log = open(folder / "serve.log", "w+")  # noqa: SIM115 - read back after the process ends
    process = subprocess.Popen(
        [TENSIONWATCH, "serve", "--config", str(config), "--every", every],
        env=serve_env(), stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def test_serve_runs_cycles_on_schedule_with_artifacts_restarts_its_server_and_stops_cleanly(
    feed_server, tmp_path
):
    feed_server.routes["/world.xml"] = Route.file("world_rss20.xml", conditional=True)
    feed_server.routes["/haber.xml"] = Route.file("haber_tr.xml")
    config = write_config(
        tmp_path,
        [
            {"name": "world", "url": feed_server.url("/world.xml")},
            {"name": "haber", "url": feed_server.url("/haber.xml"), "language": "tr"},
        ],
        storage={"path": str(tmp_path / "data" / "tw.duckdb")},
        schedule={"server_port": free_port(), "watchdog_minutes": 0},
    )
    with serving(config, tmp_path, "5s") as serve:
        api = wait_for("the server", lambda: record(tmp_path), timeout=180)["api_url"]
        first_pid = record(tmp_path)["pid"]
        (deployment,) = wait_for(
            "the deployment", lambda: api_post(api, "/deployments/filter", {}), timeout=60
        )
        assert deployment["global_concurrency_limit"]["limit"] == 1  # one cycle at a time
        assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
        assert deployment["schedules"][0]["schedule"]["interval"] == 5
        runs = wait_for(
            "two scheduled cycles",
            lambda: (
                len(done := completed(flow_runs(api, "tensionwatch-monitor"), True)) >= 2 and done
            ),
        )
        artifacts = api_post(
            api, "/artifacts/filter", {"artifacts": {"key": {"any_": ["tensionwatch-cycle"]}}}
        )
        by_run = {a["flow_run_id"]: a for a in artifacts}
        for run in runs:
            assert run["id"] in by_run, "a scheduled run without its artifact"
            text = by_run[run["id"]]["data"]
            assert "## Cycle" in text and "new stories" in text and "Iran–Israel" in text
        # The first scheduled cycle stored both feeds' stories (15), once.
        with duckdb.connect(str(tmp_path / "data" / "tw.read.duckdb"), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM stories").fetchone() == (15,)
            assert con.execute("SELECT count(*) FROM runs").fetchone()[0] >= 2

        # The server dies: serve starts it again, and the schedule goes on.
        os.kill(first_pid, signal.SIGKILL)
        wait_for(
            "a new server",
            lambda: (r := record(tmp_path)) and r["pid"] != first_pid and r,
            timeout=180,
        )
        before = {r["id"] for r in runs}
        wait_for(
            "a cycle after the restart",
            lambda: [
                r
                for r in completed(flow_runs(api, "tensionwatch-monitor"), True)
                if r["id"] not in before
            ],
        )
        server_pid = record(tmp_path)["pid"]
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(90) == 0
    output = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in output, output[-3000:]
    assert "the Prefect server stopped" in output  # it said what it did
    assert "All deployments have been paused" in output  # pause_on_shutdown
    assert record(tmp_path) is None  # it no longer says a server is up
    wait_for("the server to be gone", lambda: not _alive(server_pid), timeout=30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def test_run_beside_serve_uses_its_server(feed_server, tmp_path):
    feed_server.routes["/world.xml"] = Route.file("world_rss20.xml")
    config = write_config(
        tmp_path,
        [{"name": "world", "url": feed_server.url("/world.xml")}],
        storage={"path": str(tmp_path / "data" / "tw.duckdb")},
        schedule={"server_port": free_port(), "watchdog_minutes": 0},
    )
    with serving(config, tmp_path, "24h"):
        api = wait_for("the server", lambda: record(tmp_path), timeout=180)["api_url"]
        done = subprocess.run(
            [TENSIONWATCH, "run", "--config", str(config)],
            env=serve_env(), capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "9 new stories" in done.stdout
        manual = wait_for(
            "the run in serve's server",
            lambda: completed(flow_runs(api, "tensionwatch-monitor"), scheduled=False),
            timeout=30,
        )
        assert len(manual) == 1
        status = subprocess.run(
            [TENSIONWATCH, "status", "--config", str(config)],
            env={**serve_env(), "COLUMNS": "200"}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert f"`tensionwatch serve` is up (Prefect UI at {api.removesuffix('/api')})" in (
            status.stdout
        )
