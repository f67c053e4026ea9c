#!/usr/bin/env python3
"""Everyday tasks that need nothing but Python 3.11+:

    python3 tasks.py run [ARGS]    set up if needed, then run one monitoring cycle (tensionwatch run)
    python3 tasks.py test [ARGS]   set up if needed, then run the test suite (pytest)
    python3 tasks.py lint          ruff check and format check
    python3 tasks.py bench [ARGS]  the cycle benchmark (bench/cycle.py)
    python3 tasks.py setup         only create .venv and install tensionwatch into it

Set-up creates .venv beside this file and installs the project with its dev extras; it runs
again only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".tensionwatch-installed"


def setup() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if sys.version_info < (3, 11):  # noqa: UP036 - tasks.py may be run by an older python3
        sys.exit(f"tensionwatch needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print("Creating .venv …", flush=True)
        venv.create(VENV, with_pip=True)
    print(
        "Installing tensionwatch and its dependencies into .venv (first time: a minute or two) …",
        flush=True,
    )
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def run(*command: str) -> int:
    return subprocess.call(list(command), cwd=ROOT)


def main(argv: list[str]) -> int:
    task, args = (argv[0], argv[1:]) if argv else ("help", [])
    if task in ("help", "-h", "--help"):
        print(__doc__)
        return 0
    if task not in ("setup", "run", "test", "lint", "bench"):
        print(f"unknown task {task!r}\n{__doc__}", file=sys.stderr)
        return 2
    setup()
    python = str(BIN / "python")
    if task == "run":
        return run(str(BIN / "tensionwatch"), "run", *args)
    if task == "test":
        return run(python, "-m", "pytest", *args)
    if task == "lint":
        return run(python, "-m", "ruff", "check", ".") or run(
            python, "-m", "ruff", "format", "--check", "."
        )
    if task == "bench":
        return run(python, "bench/cycle.py", *args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
