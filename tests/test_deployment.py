"""prefect.yaml's deployments, as a team deploys them (README "Scheduled runs", path 2): a real
`prefect server start` on 127.0.0.1, `prefect work-pool create`, `prefect deploy --all` from
the project folder, and a process worker that runs a cycle from the pool.

The server runs without its scheduler, so the 15-minute schedule never starts a cycle with the
project's own config.yaml (real feeds) during the test: the run is started by hand."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import yaml

from tensionwatch.config import load_config
from tensionwatch.serving import LocalServer
from tests.conftest import ROOT, write_config
from tests.feedserver import Route

PREFECT = str(Path(sys.executable).with_name("prefect"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _prefect(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PREFECT, "--no-prompt", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_prefect_yaml_deploys_both_flows_and_a_process_worker_runs_a_cycle(feed_server, tmp_path):
    feed_server.routes["/world.xml"] = Route.file("world_rss20.xml")
    config = write_config(tmp_path, [{"name": "world", "url": feed_server.url("/world.xml")}])
    server = LocalServer(tmp_path / "prefect", _free_port(), record=False,
                         options=("--no-ui", "--no-scheduler"))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_API_URL=server.api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    server.start()
    worker = None
    try:
        _prefect(env, "work-pool", "create", "tensionwatch", "--type", "process")
        _prefect(env, "deploy", "--all")
        deployments = httpx.post(f"{server.api_url}/deployments/filter", json={}).json()
        by_name = {d["entrypoint"]: d for d in deployments}
        assert set(by_name) == {"flows/monitor.py:monitor", "flows/watchdog.py:watchdog"}
        interval = load_config(ROOT / "config.yaml").schedule.interval_minutes * 60
        for deployment in by_name.values():
            assert deployment["work_pool_name"] == "tensionwatch"
            # One run at a time; a run due while the last still runs is cancelled.
            assert deployment["global_concurrency_limit"]["limit"] == 1
            assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
            (schedule,) = deployment["schedules"]
            # prefect.yaml keeps config.yaml's interval (it cannot read config.yaml itself).
            assert schedule["schedule"]["interval"] == interval

        worker = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", "tensionwatch"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        out = _prefect(env, "deployment", "run", "tensionwatch-monitor/scheduled",
                       "--param", f"config_path={config}")  # fmt: skip
        run_id = out.split("/runs/flow-run/")[1].split()[0].strip()
        deadline = time.monotonic() + 240
        while True:
            run = httpx.get(f"{server.api_url}/flow_runs/{run_id}").json()
            if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                break
            assert time.monotonic() < deadline, f"the worker did not finish the run: {run}"
            time.sleep(1)
        assert run["state_type"] == "COMPLETED", run["state"]
        with duckdb.connect(str(tmp_path / "tw.duckdb"), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM stories").fetchone() == (9,)
        artifacts = httpx.post(
            f"{server.api_url}/artifacts/filter",
            json={"artifacts": {"key": {"any_": ["tensionwatch-cycle"]}}},
        ).json()
        assert [a["flow_run_id"] for a in artifacts] == [run_id]
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGINT)
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        server.stop()


def test_prefect_yaml_parameters_name_only_the_config_file():
    """Prefect stores every run's parameters: a deployment must never carry a secret."""
    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    for deployment in declared["deployments"]:
        assert set(deployment["parameters"]) == {"config_path"}
