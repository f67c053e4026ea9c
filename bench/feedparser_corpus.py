"""Robustness benchmark: one tensionwatch cycle over feedparser's own test corpus of odd feeds.

What it measures. feedparser's source distribution carries ~2,200 small feed documents that
its test suite parses: well-formed and ill-formed RSS/Atom/RDF, odd encodings, entities,
HTTP-header cases, gzip/deflate bodies. This script fetches that sdist at run time (pip
download of the installed feedparser version, else the latest; nothing from it is committed),
serves every feed file from a real HTTP server on 127.0.0.1, writes a config with one feed
per file, runs ONE cycle the way a user does (`tensionwatch run --config ...`, Prefect
included) and then reads the DuckDB file read-only. It reports:

* feeds tried, fetches rows, the run's exit code and wall time;
* crashes: feeds without a fetches row, "Traceback" in the output, a non-zero exit (want 0);
* stories stored, and feeds ok / unchanged / error;
* errors and warnings grouped by kind (numbers, URLs and quoted parts stripped, text before
  the first "(" or ":"), with the first few feeds of each kind and their corpus files.

How files are served: bytes as-is. Content-Type is the one a file declares in its header
comment (`Header: Content-type: ...`, the convention of feedparser's own test server),
else application/xml. tests/compression files get Content-Encoding gzip/deflate from their
suffix, as feedparser's test server sends them; other declared headers (Status, Location,
ETag) are not replayed, so the tests/http files are served as plain 200 answers.

Run (from the project root, with the project's venv):

    .venv/bin/python bench/feedparser_corpus.py
    .venv/bin/python bench/feedparser_corpus.py --limit 50 --keep      # quick try
    .venv/bin/python bench/feedparser_corpus.py --cache ~/.cache/fpcorpus --json out.json

Exit status: 1 if any crash was seen, else 0. Nothing is reached but 127.0.0.1, except pip's
download of the sdist from the package registry (skipped when --cache already holds it).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_SECONDS = 1800  # a hung cycle is a finding too, but the bench must end
EXAMPLES_PER_KIND = 3
SKIP_SUFFIXES = {".py", ".pyc"}  # the test runner itself, not a feed

# feedparser's test server reads `Header: Name: value` lines anywhere in the file.
_CONTENT_TYPE = re.compile(rb"^Header:\s+Content-type:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)

# -- the corpus --------------------------------------------------------------------------------


def feedparser_version() -> str | None:
    """The installed feedparser's version, so the corpus matches the parser under test."""
    try:
        return importlib.metadata.version("feedparser")
    except importlib.metadata.PackageNotFoundError:
        return None


def _pip_download(spec: str, dest: Path) -> bool:
    # --no-binary: only the sdist holds tests/; --no-deps: its dependencies are not wanted.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    done = subprocess.run([*cmd, spec, "-d", str(dest)], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"pip download {spec} failed:\n{done.stderr.strip()[-800:]}", file=sys.stderr)
    return done.returncode == 0


def fetch_sdist(cache: Path, version: str | None) -> Path:
    """The feedparser sdist in `cache`, downloaded with pip unless it is already there."""
    cache.mkdir(parents=True, exist_ok=True)
    if version:
        for suffix in (".tar.gz", ".zip"):
            cached = cache / f"feedparser-{version}{suffix}"
            if cached.exists():
                return cached
        if _pip_download(f"feedparser=={version}", cache):
            return _newest_sdist(cache, version)
    # An unknown or unpublished version (a dev install, say): the latest corpus still helps.
    if not _pip_download("feedparser", cache):
        raise SystemExit("cannot download feedparser's sdist with pip")
    return _newest_sdist(cache, None)


def _newest_sdist(cache: Path, version: str | None) -> Path:
    pattern = f"feedparser-{version}.*" if version else "feedparser-*"
    found = sorted(cache.glob(pattern), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"no feedparser sdist in {cache} after pip download")
    return found[-1]


def unpack(sdist: Path, dest: Path) -> Path:
    """Unpack the sdist into dest and return its top folder (feedparser-X.Y.Z)."""
    if sdist.suffix == ".zip":
        shutil.unpack_archive(sdist, dest)
    else:
        with tarfile.open(sdist) as tar:
            tar.extractall(dest, filter="data")  # "data": no absolute paths or links out
    tops = [p for p in dest.iterdir() if p.is_dir() and p.name.startswith("feedparser")]
    if len(tops) != 1:
        raise SystemExit(f"unexpected layout in {sdist.name}: {[p.name for p in tops]}")
    return tops[0]


def collect_corpus(top: Path, limit: int | None) -> list[Path]:
    """Every feed document under the sdist's tests/, relative to the sdist, in a stable order."""
    files = sorted(
        p.relative_to(top)
        for p in (top / "tests").rglob("*")
        if p.is_file() and p.suffix not in SKIP_SUFFIXES
    )
    if not files:
        raise SystemExit(f"no test files under {top / 'tests'}")
    return files[:limit] if limit else files


# -- the server --------------------------------------------------------------------------------


def response_headers(rel: Path, body: bytes) -> dict[str, str]:
    """Headers for one corpus file, following feedparser's own test server."""
    declared = _CONTENT_TYPE.search(body)
    ctype = declared.group(1).decode("latin-1") if declared else "application/xml"
    headers = {"Content-Type": ctype, "Content-Length": str(len(body))}
    if rel.parts[:2] == ("tests", "compression"):
        # These bodies are compressed (some deliberately broken); the suffix names the coding.
        headers["Content-Encoding"] = "gzip" if rel.suffix == ".gz" else "deflate"
    return headers


def url_path(rel: Path) -> str:
    # The corpus path as the URL path: relative links inside a feed resolve as they would.
    return "/" + quote(rel.as_posix())


def build_routes(top: Path, files: list[Path]) -> dict[str, tuple[bytes, dict[str, str]]]:
    routes = {}
    for rel in files:
        body = (top / rel).read_bytes()
        routes[url_path(rel)] = (body, response_headers(rel, body))
    return routes


def start_server(routes: dict[str, tuple[bytes, dict[str, str]]]) -> ThreadingHTTPServer:
    """Serve the routes on 127.0.0.1 on an ephemeral port, from a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
            self._answer(with_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(with_body=False)

        def _answer(self, with_body: bool) -> None:
            route = routes.get(quote(unquote(urlsplit(self.path).path)))
            if route is None:
                self.send_error(404)
                return
            body, headers = route
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass  # thousands of access lines would bury the report

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # The default backlog of 5 drops connections when 32 fetches open at once.
        request_queue_size = 256

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name="corpus-server", daemon=True).start()
    return server


# -- the cycle ---------------------------------------------------------------------------------


def write_config(workdir: Path, files: list[Path], port: int) -> tuple[Path, dict[str, Path]]:
    """A config with one feed per corpus file; returns its path and feed name -> file."""
    topics = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))["topics"]
    names = {f"f{i:05d}": rel for i, rel in enumerate(files, start=1)}
    config = {
        "storage": {"path": str(workdir / "corpus.duckdb")},
        # One local host stands in for thousands of publishers: the shipped per-host limit of
        # 2 would serialise the cycle, and retries would only repeat deterministic answers.
        "fetch": {
            "timeout_seconds": 10,
            "deadline_seconds": 60,
            "concurrency": 32,
            "per_host_concurrency": 32,
            "retries": 0,
        },
        "feeds": [
            {"name": name, "url": f"http://127.0.0.1:{port}{url_path(rel)}", "language": "en"}
            for name, rel in names.items()
        ],
        "topics": topics,
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, names


def tensionwatch_command() -> str:
    # The venv's own entry point, as a user runs it; PATH only if the script ran elsewhere.
    beside = Path(sys.executable).parent / "tensionwatch"
    found = str(beside) if beside.exists() else shutil.which("tensionwatch")
    if not found:
        raise SystemExit("tensionwatch command not found; run with the project's .venv python")
    return found


def run_cycle(config: Path, workdir: Path) -> dict:
    """One `tensionwatch run` as a subprocess: exit code, output and wall time."""
    cmd = [tensionwatch_command(), "run", "--config", str(config)]
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    started = time.monotonic()
    try:
        done = subprocess.run(
            cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS
        )
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        code = None  # counted as a crash: the cycle never finished
        out, err = _text(exc.stdout), _text(exc.stderr) + f"\n[killed after {exc.timeout} s]"
    wall = time.monotonic() - started
    return {"command": cmd, "exit_code": code, "stdout": out, "stderr": err, "wall_s": wall}


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data or ""


# -- reading the results -----------------------------------------------------------------------


def read_database(path: Path) -> dict:
    """fetches rows and the stories count, read-only (the run has ended, but be a good citizen)."""
    if not path.exists():
        return {"fetches": [], "stories": 0, "runs": 0}
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT feed_id, outcome, error, warning, status_code, entries_seen FROM fetches"
        ).fetchall()
        stories = con.execute("SELECT count(*) FROM stories").fetchone()[0]
        runs = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        con.close()
    keys = ("feed_id", "outcome", "error", "warning", "status_code", "entries_seen")
    return {
        "fetches": [dict(zip(keys, r, strict=True)) for r in rows],
        "stories": stories,
        "runs": runs,
    }


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")
# A number standing alone is noise; one inside a name (UTF-8, cp1252) is part of the name.
_NUMBER = re.compile(r"(?<![A-Za-z])(?<![A-Za-z]-)\d+(?:\.\d+)?")
_SAX_POSITION = re.compile(r"<unknown>:\d+:\d+:\s*")


def message_kind(message: str | None) -> str:
    """An error or warning reduced to its kind: "not a readable feed", "HTTP 404 Not Found"."""
    if not message:
        return ""
    # URLs and quoted parts first: they hold ":" and "(" that would cut the text short.
    text = _QUOTED.sub("…", _URL.sub("URL", message))
    head = re.split(r"[(:]", text, maxsplit=1)[0]
    status = _HTTP_STATUS.search(head)  # a status code is the kind, not noise
    head = _NUMBER.sub("N", head)
    if status:
        head = head.replace("HTTP N", f"HTTP {status.group(1)}", 1)
    return " ".join(head.split()).rstrip(",;.") or "(empty)"


def message_detail(message: str | None) -> str:
    """What the first parentheses say, e.g. "SAXParseException: undefined entity", if anything.

    The kind alone lumps every parser failure together; the parser's own complaint (without
    its line and column) says which ones share a cause.
    """
    text = _SAX_POSITION.sub("", _QUOTED.sub("…", _URL.sub("URL", message or "")))
    if "(" not in text:
        return ""
    inside = re.split(r"[()]", text.split("(", 1)[1], maxsplit=1)[0]
    return " ".join(_NUMBER.sub("N", inside).split()).rstrip(",;:.")[:60]


def corpus_folder(rel: Path) -> str:
    # tests/<folder>/...: wellformed files failing is news, illformed ones failing is not.
    return rel.parts[1] if len(rel.parts) > 2 else rel.parent.as_posix()


def _examples(members: list[dict], field: str) -> list[dict]:
    """A few rows of one kind: one per distinct detail first, so different causes show."""
    ordered = sorted(members, key=lambda r: r["feed_id"])
    picked, seen = [], set()
    for row in ordered:
        detail = message_detail(row[field])
        if detail not in seen:
            seen.add(detail)
            picked.append(row)
    picked += [r for r in ordered if r not in picked]
    return picked[:EXAMPLES_PER_KIND]


def group_messages(rows: list[dict], field: str, names: dict[str, Path]) -> list[dict]:
    """Rows with a message in `field`, grouped by kind, largest group first."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row[field]:
            groups[message_kind(row[field])].append(row)
    out = []
    for kind, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        details = Counter(message_detail(r[field]) for r in members if message_detail(r[field]))
        folders = Counter(corpus_folder(names[r["feed_id"]]) for r in members)
        examples = _examples(members, field)
        out.append(
            {
                "kind": kind,
                "count": len(members),
                "folders": dict(folders.most_common()),
                "details": dict(details.most_common(4)),
                "examples": [
                    {"feed": r["feed_id"], "file": names[r["feed_id"]].as_posix(), field: r[field]}
                    for r in examples
                    if r["feed_id"] in names
                ],
            }
        )
    return out


def tracebacks(output: str) -> list[str]:
    """Each traceback in the output, from its header to the exception line."""
    found, lines = [], output.splitlines()
    for start, line in enumerate(lines):
        if "Traceback (most recent call last)" not in line:
            continue
        end = start + 1
        # The frames are indented; the first unindented line is the exception itself.
        while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end]):
            end += 1
        found.append("\n".join(lines[start : end + 1]))
    return found


def feeds_named(text: str, names: dict[str, Path]) -> list[str]:
    """Feeds a piece of output points at, by feed name or by served URL path."""
    hits = set(re.findall(r"\bf\d{5}\b", text)) & names.keys()
    by_path = {url_path(rel): name for name, rel in names.items()}
    hits |= {by_path[p] for p in re.findall(r"127\.0\.0\.1:\d+(/[^\s'\")]+)", text) if p in by_path}
    return sorted(hits)


def summarise(run: dict, db: dict, names: dict[str, Path]) -> dict:
    """The figures the report prints (and --json writes)."""
    rows = [r for r in db["fetches"] if r["feed_id"] in names]
    missing = sorted(names.keys() - {r["feed_id"] for r in rows})
    output = run["stdout"] + "\n" + run["stderr"]
    tbs = tracebacks(output)
    traceback_count = output.count("Traceback")
    outcomes = Counter(r["outcome"] for r in rows)
    crashes = len(missing) + traceback_count + (run["exit_code"] != 0)
    return {
        "feeds_tried": len(names),
        "fetches_rows": len(rows),
        "runs_rows": db["runs"],
        "exit_code": run["exit_code"],
        "wall_s": round(run["wall_s"], 1),
        "missing_fetches": [{"feed": n, "file": names[n].as_posix()} for n in missing],
        "tracebacks": traceback_count,
        "traceback_texts": [{"text": t, "feeds": feeds_named(t, names)} for t in tbs],
        "crashes": crashes,
        "stories_stored": db["stories"],
        "feeds_ok": outcomes.get("ok", 0),
        "feeds_unchanged": outcomes.get("unchanged", 0) + outcomes.get("not_modified", 0),
        "feeds_error": outcomes.get("error", 0),
        "entries_seen": sum(r["entries_seen"] or 0 for r in rows),
        "errors": group_messages(rows, "error", names),
        "warnings": group_messages(rows, "warning", names),
    }


# -- the report --------------------------------------------------------------------------------


def _print_groups(title: str, groups: list[dict], field: str) -> None:
    print(f"{title} ({sum(g['count'] for g in groups)} feeds, {len(groups)} kinds):")
    for group in groups:
        print(f"  {group['count']:5d}  {group['kind']}")
        print("         in " + ", ".join(f"{k} {v}" for k, v in group["folders"].items()))
        if group["details"]:
            print("         as " + "; ".join(f"{k} {v}" for k, v in group["details"].items()))
        for ex in group["examples"]:
            print(f"         {ex['feed']} {ex['file']}: {ex[field][:90]}")


def print_report(figures: dict, run: dict, sdist: str) -> None:
    print(f"feedparser corpus: {figures['feeds_tried']} files from {sdist}")
    print(f"command: {' '.join(run['command'])}")
    print(f"exit code {figures['exit_code']}, wall {figures['wall_s']:.1f} s")
    print(f"feeds tried      {figures['feeds_tried']}")
    print(f"fetches rows     {figures['fetches_rows']} (missing {len(figures['missing_fetches'])})")
    print(f"tracebacks       {figures['tracebacks']}")
    print(f"CRASHES          {figures['crashes']}")
    print(f"stories stored   {figures['stories_stored']} (entries seen {figures['entries_seen']})")
    ok, unchanged, error = figures["feeds_ok"], figures["feeds_unchanged"], figures["feeds_error"]
    print(f"feeds ok / unchanged / error   {ok} / {unchanged} / {error}")
    _print_groups("errors by kind", figures["errors"], "error")
    _print_groups("warnings by kind", figures["warnings"], "warning")
    _print_crashes(figures, run)


def _print_crashes(figures: dict, run: dict) -> None:
    for miss in figures["missing_fetches"][:20]:
        print(f"  no fetches row: {miss['feed']} {miss['file']}")
    for tb in figures["traceback_texts"][:5]:
        print(f"  traceback (feeds {', '.join(tb['feeds']) or 'unknown'}):")
        for line in tb["text"].splitlines()[-6:]:
            print(f"    {line}")
    if figures["exit_code"] != 0:
        print("  non-zero exit; last lines of stderr / stdout:")
        for line in (run["stderr"].strip() or run["stdout"].strip()).splitlines()[-8:]:
            print(f"    {line}")


# -- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, metavar="DIR", help="keep the sdist download here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir, print its path")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N corpus files")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the figures as JSON")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tw-fpcorpus-"))
    try:
        sdist = fetch_sdist(args.cache or workdir / "download", feedparser_version())
        top = unpack(sdist, workdir / "sdist")
        files = collect_corpus(top, args.limit)
        server = start_server(build_routes(top, files))
        try:
            config, names = write_config(workdir, files, server.server_address[1])
            run = run_cycle(config, workdir)
        finally:
            server.shutdown()
        figures = summarise(run, read_database(workdir / "corpus.duckdb"), names)
        print_report(figures, run, sdist.name)
        if args.json:
            figures["sdist"] = sdist.name
            args.json.write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if figures["crashes"] > 0 else 0


if __name__ == "__main__":
    sys.exit(main())
