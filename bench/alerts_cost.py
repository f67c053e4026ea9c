"""What the alert step at the end of a cycle costs on a big database against an empty one.

Uses the databases `bench/query.py --keep DIR` leaves (DIR/empty.duckdb and DIR/big.duckdb,
10 million stories), copied so they stay as they were. Each measurement is a child process of
its own running `alerting.monitor` (detection, recording; no destinations), reporting seconds
and peak memory (VmHWM):
- the first run, which reads the windows of the whole baseline (eight weeks and a day) and
  keeps them in `alert_windows`;
- then runs 6, 12 and 30 hours later (one 6-hour window closed; one more; a day and its four
  windows), which read only the windows closed since.

    .venv/bin/python bench/alerts_cost.py --keep /tmp/qkeep7 [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LATER = (6, 12, 30)


def child(db: str, hours: float) -> None:
    from tensionwatch.alerting import monitor
    from tensionwatch.config import load_config
    from tensionwatch.store import Store

    config = load_config(ROOT / "config.yaml")
    began = time.monotonic()
    report = monitor(Store(Path(db)), config, now=datetime.now(UTC) + timedelta(hours=hours))
    seconds = time.monotonic() - began
    peak = next(
        int(line.split()[1]) / 1024
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "windows": len(report.decisions)}))


def run(db: Path, hours: float) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(db), "--hours", str(hours)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="the folder bench/query.py --keep filled")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--hours", type=float, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.hours)
        return 0
    if not args.keep:
        parser.error("--keep DIR is needed")
    rows: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for name in ("empty", "big"):
                copy = Path(tmp) / f"{name}.duckdb"
                shutil.copy(args.keep / f"{name}.duckdb", copy)
                runs = rows.setdefault(name, {})
                runs.setdefault("first", []).append(run(copy, 0))
                for hours in LATER:
                    runs.setdefault(f"+{hours} h", []).append(run(copy, hours))
                copy.unlink()
    print(f"Medians of {args.repeat}:\n")
    print("| alert step | empty: s | 10M: s | ratio | empty: MB | 10M: MB | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for step in rows["empty"]:
        e, b = rows["empty"][step], rows["big"][step]

        def med(runs: list[dict], key: str) -> float:
            return statistics.median(r[key] for r in runs)

        print(
            f"| {step} | {med(e, 'seconds'):.2f} | {med(b, 'seconds'):.2f} | "
            f"{med(b, 'seconds') / med(e, 'seconds'):.1f}x | {med(e, 'peak_mb'):.0f} | "
            f"{med(b, 'peak_mb'):.0f} | {med(b, 'peak_mb') / med(e, 'peak_mb'):.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
