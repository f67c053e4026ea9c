"""Running the flows under Prefect: where the flow files are, the local Prefect server that
`tensionwatch serve` looks after, and serve's supervisor.

Prefect 3 schedules runs only against a real API server (its ephemeral in-process API
schedules nothing), so `serve` starts `prefect server start` on 127.0.0.1 itself unless
PREFECT_API_URL names one, with its PREFECT_HOME (SQLite database, logs) beside the DuckDB
file. It serves the deployments (flows/serve.py) in a child process against that server,
restarts the server or the child if either dies, and on Ctrl-C or SIGTERM stops the child
first (Prefect pauses the schedules on the way out, see README "Schedules") and the server
last, with no traceback. Both children run in sessions of their own, so a Ctrl-C in the
terminal reaches only the supervisor, which stops them in that order.

`tensionwatch run` uses the server serve keeps when one is up (server.json in its
PREFECT_HOME says where; a health check confirms), else PREFECT_API_URL, else Prefect's
ephemeral API. Nothing here imports Prefect: it is run as a program.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from tensionwatch.config import Config
from tensionwatch.errors import TensionwatchError

HOST = "127.0.0.1"
STATE_FILE = "tensionwatch-server.json"
HEALTH_TIMEOUT_SECONDS = 1.0
START_TIMEOUT_SECONDS = 120.0  # a first start creates Prefect's database: slow on a busy laptop
STOP_TIMEOUT_SECONDS = 30.0
MAX_LOG_BYTES = 10_000_000  # the server's log is started afresh past this
# Settings for every Prefect process serve starts: no telemetry (it fails noisily offline),
# and the server's own database and logs in its home, not the user's ~/.prefect.
QUIET_SERVER = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


class ServeError(TensionwatchError):
    """The local Prefect server or the served flows could not be started (one line why)."""


def flows_dir() -> Path:
    """flows/ of a source checkout, or the copy packed into an installed wheel."""
    checkout = Path(__file__).resolve().parents[2] / "flows"
    if (checkout / "monitor.py").is_file():
        return checkout
    return Path(str(resources.files("tensionwatch") / "flows"))


def load_flow(file: str, name: str) -> Any:
    """A flow object from flows/<file>, loaded by path as Prefect loads an entrypoint: the
    CLI runs the flows without the flows and the CLI importing each other."""
    import importlib.util

    path = flows_dir() / file
    module_name = f"tensionwatch_flows_{path.stem}"
    if module_name in sys.modules:
        return getattr(sys.modules[module_name], name)
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return getattr(module, name)


def quiet_connection_errors() -> None:
    """Prefect's runner and flow runs log a whole traceback each time a connection to the API
    drops (the server restarting, a blip): the warning line says what happened, the traceback
    is noise in a log nobody watches. Such records keep one line, with the error's name and
    text; every other traceback is kept. Done where records are made, because Prefect sets up
    its handlers later; once per process."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "quiet_connection_errors", False):
        return

    def record(*args: object, **kwargs: object) -> logging.LogRecord:
        made = make_record(*args, **kwargs)
        error = made.exc_info[1] if made.exc_info else None
        if error is not None and (
            isinstance(error, OSError)
            or type(error).__module__.split(".")[0] in ("websockets", "httpx", "httpcore")
        ):
            made.msg = f"{made.getMessage()} ({type(error).__name__}: {error})"
            made.args, made.exc_info, made.exc_text = None, None, None
        return made

    record.quiet_connection_errors = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(record)


def prefect_home(config: Config) -> Path:
    """The local server's PREFECT_HOME: `prefect/` beside the database."""
    return config.database_path.parent / "prefect"


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """What server.json says: the API address of the server serve keeps, and its process."""

    api_url: str
    pid: int
    started_at: str


def read_record(home: Path) -> ServerRecord | None:
    try:
        data = json.loads((home / STATE_FILE).read_text(encoding="utf-8"))
        return ServerRecord(str(data["api_url"]), int(data["pid"]), str(data["started_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none, or damaged: as if no server were up


def healthy(api_url: str, timeout: float = HEALTH_TIMEOUT_SECONDS) -> bool:
    """Whether a Prefect API answers its health check at `api_url` (…/api)."""
    try:
        response = httpx.get(f"{api_url}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, but then not ours (the check fails)
    return True


def running_server(config: Config) -> str | None:
    """The API address of the server `serve` keeps for this config, when it is up now."""
    record = read_record(prefect_home(config))
    if record and _alive(record.pid) and healthy(record.api_url):
        return record.api_url
    return None


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


class LocalServer:
    """`prefect server start` on 127.0.0.1, with its home beside the database."""

    def __init__(self, home: Path, port: int, record: bool = True, options: tuple = ()) -> None:
        self.home = home
        self.port = port
        self.api_url = f"http://{HOST}:{port}/api"
        self.record = record  # in server.json, for `run` to find: serve's server only
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        return {**env, **QUIET_SERVER, "PREFECT_HOME": str(self.home)}

    def start(self) -> None:
        """Start the server and wait until it answers; ServeError if it does not."""
        self.launch()
        self.wait_until_healthy()

    def launch(self) -> None:
        """Start the server's process, without waiting for it to answer."""
        self.home.mkdir(parents=True, exist_ok=True)
        if not _port_free(self.port):
            if healthy(self.api_url):
                raise ServeError(
                    f"a Prefect server already answers on {HOST}:{self.port}: set "
                    f"PREFECT_API_URL={self.api_url} to use it, or schedule.server_port to "
                    "start another"
                )
            raise ServeError(
                f"port {self.port} on {HOST} is taken by another program: set "
                "schedule.server_port to a free port"
            )
        log_path = self.home / "server.log"
        if log_path.exists() and log_path.stat().st_size > MAX_LOG_BYTES:
            log_path.replace(log_path.with_suffix(".log.1"))
        with open(log_path, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", HOST,
                 "--port", str(self.port), *self.options],
                env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent,
            )  # fmt: skip

    def wait_until_healthy(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        assert self.process is not None
        log_path = self.home / "server.log"
        deadline = time.monotonic() + timeout
        while not healthy(self.api_url):
            if self.process.poll() is not None:
                raise ServeError(
                    f"the Prefect server stopped while starting (exit {self.process.returncode});"
                    f" its log: {log_path}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ServeError(
                    f"the Prefect server did not answer within {timeout:g} s; its log: {log_path}"
                )
            time.sleep(0.1)
        if self.record:
            state = self.home / STATE_FILE
            record = {
                "api_url": self.api_url,
                "pid": self.process.pid,
                "started_at": datetime.now(UTC).isoformat(),
            }
            state.with_suffix(".tmp").write_text(json.dumps(record), encoding="utf-8")
            state.with_suffix(".tmp").replace(state)

    def exited(self) -> int | None:
        """The exit code if the server has stopped, else None."""
        return None if self.process is None else self.process.poll()

    def stop(self, wait: bool = True) -> None:
        """Stop the server: SIGTERM, and (with `wait`) SIGKILL if it has not exited after
        STOP_TIMEOUT_SECONDS. Without `wait` it shuts down on its own after the caller is
        gone (a `run` does not wait the 0.2 s its temporary server takes)."""
        if self.record:
            (self.home / STATE_FILE).unlink(missing_ok=True)
        if self.process is None:
            return
        if wait:
            _stop_process(self.process)
        elif self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)


def temporary_server(config: Config) -> LocalServer:
    """A Prefect API for one `tensionwatch run`, launched (not yet answering): what Prefect's
    ephemeral mode does, but started by tensionwatch before it imports Prefect, so it boots
    while the command loads, and its server code stays out of the command's memory (83 MB).
    Its database is serve's (the runs of both show in one history); no UI, no scheduling."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    server = LocalServer(
        prefect_home(config), port, record=False,
        options=("--no-ui", "--no-scheduler", "--no-late-runs"),
    )  # fmt: skip
    server.launch()
    return server


def _die_with_parent() -> None:
    """In the child, before it runs: ask Linux to send it SIGTERM when its parent dies, so a
    server or served flows never outlive a `run` or `serve` that was killed (SIGKILL, OOM).
    Elsewhere a no-op: the parent's own clean-up stops them."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's group, then SIGKILL if it is still there after a while."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def serve(config: Config, config_file: Path, every_seconds: float | None, say: Callable) -> int:
    """Serve the deployments until Ctrl-C or SIGTERM; returns the exit code."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    server: LocalServer | None = None
    child: subprocess.Popen[bytes] | None = None
    try:
        api_url = os.environ.get("PREFECT_API_URL")
        if api_url:
            say(f"serving against the Prefect server at {api_url} (PREFECT_API_URL)")
        else:
            server = LocalServer(prefect_home(config), config.schedule.server_port)
            say(f"starting a Prefect server on {HOST}:{server.port} (home {server.home}) …")
            server.start()
            api_url = server.api_url
            say(f"Prefect server up: UI at http://{HOST}:{server.port}")
        command = [sys.executable, str(flows_dir() / "serve.py"), str(config_file)]
        if every_seconds is not None:
            command += ["--every", str(every_seconds)]
        env = {**os.environ, **QUIET_SERVER, "PREFECT_API_URL": api_url}
        if server is not None:
            env["PREFECT_HOME"] = str(server.home)
        started = 0.0
        failures = 0
        while not stop.is_set():
            if server is not None and (code := server.exited()) is not None:
                say(f"the Prefect server stopped (exit {code}); starting it again")
                try:
                    server.start()
                except ServeError as exc:
                    say(f"{exc}; trying again in 30 s")
                    stop.wait(30)
                    continue
            if child is None or child.poll() is not None:
                if child is not None:
                    # A child that keeps dying at once (a bad flow file) is not restarted in a
                    # tight loop: the wait doubles, up to a minute.
                    failures = failures + 1 if time.monotonic() - started < 30 else 1
                    wait = min(60.0, 2.0**failures)
                    say(f"the served flows stopped (exit {child.returncode}); again in {wait:g} s")
                    if stop.wait(wait):
                        break
                started = time.monotonic()
                child = subprocess.Popen(
                    command,
                    env=env,
                    cwd=flows_dir().parent,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            stop.wait(1.0)
        say("stopping: the served flows first, then the server …")
        return 0
    finally:
        if child is not None:
            _stop_process(child)
        if server is not None:
            server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
