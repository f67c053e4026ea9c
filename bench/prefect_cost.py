"""What Prefect costs a user: `tensionwatch run` through the CLI against the same cycle in-process.

Measured, in one run, on N generated feeds of M items (default 500 x 50, bench/cycle.py's
corpus, served over real HTTP on 127.0.0.1 by a process of its own):

* start-up      - from starting `tensionwatch run` to its first feed request (a probe feed
                  this script serves and times itself), with a tiny config: alone (a Prefect
                  API starts and stops with the run; the first run in a folder also creates
                  Prefect's database) and beside a running server (a `tensionwatch serve` is
                  up, and `run` uses its server). Targets: <= 8 s alone, <= 3 s beside.
* cold cycle    - the 500 x 50 cycle through the CLI on a fresh database: the run's wall time
                  less its start-up, against the same four steps called in-process
                  (bench/cycle.py's child, which imports no Prefect). Target: <= 1.2x.
* peak memory   - VmHWM of the `tensionwatch run` process during the cold cycle (read from
                  /proc until it exits), and the process tree's largest summed RSS (sampled
                  every 50 ms: the parse workers and Prefect's server count too). Target for the
                  run process: <= 400 MB.

Each measurement is repeated --repeat times; medians are reported with every run.

    .venv/bin/python bench/prefect_cost.py [--feeds 500 --items 50 --repeat 3]

Nothing is reached but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cycle import (  # noqa: E402
    default_topics,
    feed_language,
    our_cycle,
    start_server,
    write_corpus,
)

TENSIONWATCH = str(Path(sys.executable).with_name("tensionwatch"))
PROBE_FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Probe</title>'
    b"<item><title>Probe story</title><link>https://probe.example/1</link></item>"
    b"</channel></rss>"
)


class Probe:
    """A feed served from this process that notes when it is first asked for."""

    def __init__(self) -> None:
        self.first_request: float | None = None
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if probe.first_request is None:
                    probe.first_request = time.monotonic()
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(PROBE_FEED)))
                self.end_headers()
                self.wfile.write(PROBE_FEED)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/probe.xml"


def write_config(
    folder: Path, probe_url: str, base: str | None, feeds: int, port: int, name: str = "tw"
) -> Path:
    """A config in `folder` whose database is data/<name>.duckdb: configs of one folder share
    the Prefect home beside it (data/prefect), so a `run` finds the server a serve started."""
    listed = [{"name": "probe", "url": probe_url}]
    if base:
        listed += [
            {"name": f"feed_{i:04d}", "url": f"{base}/feed{i}.xml", "language": feed_language(i)}
            for i in range(feeds)
        ]
    raw = {
        "storage": {"path": str(folder / "data" / f"{name}.duckdb")},
        "fetch": {  # as bench/cycle.py: one local server stands in for N hosts
            "concurrency": 32,
            "per_host_concurrency": 32,
            "timeout_seconds": 30,
            "deadline_seconds": 120,
        },
        "schedule": {"server_port": port},
        "feeds": listed,
        "topics": default_topics(),
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _tree_rss_mb(pid: int) -> float:
    """Summed RSS of a process and its descendants (from /proc), in MB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
            children.setdefault(int(fields[1]), []).append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total / 1e6


def timed_run(config: Path, probe: Probe, env: dict[str, str]) -> dict:
    """One `tensionwatch run`: wall time, start-up (to the probe's first request), peaks."""
    probe.first_request = None
    began = time.monotonic()
    process = subprocess.Popen(
        [TENSIONWATCH, "run", "--config", str(config)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    hwm, tree = 0.0, 0.0
    while process.poll() is None:
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm = max(hwm, int(line.split()[1]) / 1024)
        except OSError:
            pass
        tree = max(tree, _tree_rss_mb(process.pid))
        time.sleep(0.05)
    wall = time.monotonic() - began
    if process.returncode != 0:
        raise SystemExit(f"tensionwatch run exited {process.returncode}: {process.stderr.read()}")
    assert probe.first_request is not None, "the probe feed was never asked for"
    return {
        "wall": wall,
        "startup": probe.first_request - began,
        "peak_mb": hwm,
        "tree_peak_mb": tree,
    }


def start_serve(config: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`tensionwatch serve` with a schedule that never comes due during the bench; returns
    once its server answers."""
    process = subprocess.Popen(
        [TENSIONWATCH, "serve", "--config", str(config), "--every", "24h"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    record = config.parent / "data" / "prefect" / "tensionwatch-server.json"  # as serving.py
    deadline = time.monotonic() + 180
    while not record.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("tensionwatch serve did not start its server")
        time.sleep(0.5)
    time.sleep(5)  # the served deployments register; the server settles
    return process


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--port", type=int, default=4290, help="for serve's local server")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    probe = Probe()
    with tempfile.TemporaryDirectory(prefix="tw-prefect-cost-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        corpus.mkdir()
        write_corpus(corpus, args.feeds, args.items, args.seed)
        server, base = start_server(corpus)
        runs: dict[str, list[dict]] = {
            k: [] for k in ("alone_first", "alone", "beside", "cold", "cold_beside")
        }
        inproc: list[dict] = []
        try:
            for n in range(args.repeat):
                print(f"round {n + 1} of {args.repeat} …", flush=True)
                inproc.append(our_cycle(base, args.feeds, 32, after_steps=True))
                tiny = work / f"tiny{n}"
                tiny.mkdir()
                tiny_config = write_config(tiny, probe.url, None, 0, args.port)
                # The first run in a folder creates Prefect's database; later runs reuse it.
                runs["alone_first"].append(timed_run(tiny_config, probe, env))
                # A later run in the same folder (Prefect's database exists) with a database
                # of its own: in the first one the probe feed is not due again for 15 minutes.
                again = write_config(tiny, probe.url, None, 0, args.port, "again")
                runs["alone"].append(timed_run(again, probe, env))
                cold = work / f"cold{n}"
                cold.mkdir()
                cold_config = write_config(cold, probe.url, base, args.feeds, args.port)
                runs["cold"].append(timed_run(cold_config, probe, env))
                # The same, beside a served schedule (its server is the one `run` finds).
                beside = work / f"beside{n}"
                beside.mkdir()
                beside_config = write_config(beside, probe.url, base, args.feeds, args.port)
                tiny_beside = write_config(beside, probe.url, None, 0, args.port, "tiny")
                serving = start_serve(tiny_beside, env)
                try:
                    runs["beside"].append(timed_run(tiny_beside, probe, env))
                    runs["cold_beside"].append(timed_run(beside_config, probe, env))
                finally:
                    serving.send_signal(signal.SIGTERM)
                    serving.wait(60)
        finally:
            assert server.stdin is not None
            server.stdin.close()
            server.wait()
    cycle_in = statistics.median(c["cold"]["total"] for c in inproc)
    # The flow also detects alerts, prunes and summarises after storing: the same steps
    # in-process are the fair baseline of what Prefect adds (the four steps as the issue did).
    flow_in = statistics.median(c["cold"]["total"] + c["cold"]["after_steps"] for c in inproc)
    peak_in = statistics.median(c["peak_mb"] for c in inproc)
    cold_cli = statistics.median(r["wall"] - r["startup"] for r in runs["cold"])
    cold_beside = statistics.median(r["wall"] - r["startup"] for r in runs["cold_beside"])
    print(f"\nMedians of {args.repeat} runs, {args.feeds} feeds x {args.items} items:\n")
    print("| measure | value | target | |\n|---|---:|---|---|")

    def row(name: str, value: float, unit: str, limit: float | None = None) -> None:
        verdict = "" if limit is None else ("met" if value <= limit else "MISSED")
        target = "" if limit is None else f"≤ {limit:g}{unit.strip()}"
        print(f"| {name} | {value:.2f}{unit} | {target} | {verdict} |")

    row("start-up alone, first run in a folder", median(runs["alone_first"], "startup"), " s", 8)
    row("start-up alone, later runs", median(runs["alone"], "startup"), " s", 8)
    row("start-up beside a served schedule", median(runs["beside"], "startup"), " s", 3)
    row("tiny run alone, wall", median(runs["alone"], "wall"), " s")
    row("tiny run beside a server, wall", median(runs["beside"], "wall"), " s")
    row("cold cycle in-process: fetch, parse + score, store (no Prefect)", cycle_in, " s")
    row("  and the flow's later steps: alerts, prune, summary", flow_in, " s")
    row("cold cycle through the CLI, alone (wall - start-up)", cold_cli, " s")
    row("  ratio to the four steps in-process", cold_cli / cycle_in, "x")
    row("  ratio to the same steps in-process", cold_cli / flow_in, "x", 1.2)
    row("cold cycle through the CLI, beside a server", cold_beside, " s")
    row("  ratio to the four steps in-process", cold_beside / cycle_in, "x")
    row("  ratio to the same steps in-process", cold_beside / flow_in, "x", 1.2)
    row(
        "peak memory of the run process (VmHWM), alone", median(runs["cold"], "peak_mb"), " MB", 400
    )
    row("  beside a server", median(runs["cold_beside"], "peak_mb"), " MB", 400)
    row("peak memory, process tree summed (workers, ephemeral server)",
        median(runs["cold"], "tree_peak_mb"), " MB")  # fmt: skip
    row("peak memory of the in-process cycle (VmHWM)", peak_in, " MB")
    for name, values in runs.items():
        print(
            f"all runs, {name}: "
            + ", ".join(
                f"wall {r['wall']:.2f} s start-up {r['startup']:.2f} s peak {r['peak_mb']:.0f} MB "
                f"tree {r['tree_peak_mb']:.0f} MB"
                for r in values
            )
        )
    print("all runs, in-process: " + ", ".join(
        f"{c['cold']['total']:.2f} s + {c['cold']['after_steps']:.2f} s after {c['peak_mb']:.0f} MB"
        for c in inproc))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
