"""Hostile feed bodies never stop the cycle.

Each test serves hostile bodies beside a good feed (fixtures/feeds/world_rss20.xml, 9
stories) from the local test server, runs a whole cycle (fetch → parse and score in worker
processes → store into a real DuckDB file) and checks that the cycle finishes, that the
hostile feed gets a clear error of its own or its recovered stories, and that every story of
the good feed is stored. Every hostile document is written here, in code, beside the test
that uses it, with what it tests and what is expected. Two property tests end the file: any
bytes as a body, and any text in any field of an RSS item.

Four cases here found defects in the code they were written against (a UTF-16 BE body under a
`charset=utf-16` header, one bad byte turning a UTF-8 feed into mojibake, a well-formed HTML
page stored as an empty feed, a "+9999" zone shifting a date by four days); they are plain
tests now that the code is fixed.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from xml.sax.saxutils import escape

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from tensionwatch.cli import print_summary
from tensionwatch.config import Config, load_config
from tensionwatch.cycle import CycleReport, new_batch, parse_and_score
from tensionwatch.fetch import FAILED, OK, FetchResult, body_hash
from tensionwatch.store import Store
from tensionwatch.summary import summarise
from tensionwatch.text import MAX_SUMMARY_CHARS, MAX_TITLE_CHARS
from tensionwatch.workers import feed_workers
from tests.conftest import write_config
from tests.feedserver import Route
from tests.test_cycle import query, run_cycle

GOOD_FEED = "world"
GOOD_STORIES = 9  # world_rss20.xml: 9 entries, each its own story
# Never text in a stored or printed string: C0 controls but tab and line breaks, DEL, C1
# controls, lone surrogates.
NOT_TEXT = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
RSS = "application/rss+xml; charset=utf-8"


# --- building hostile documents ----------------------------------------------------------------


def item(
    title: str,
    guid: str | None,
    description: str = "",
    link: str | None = None,
    pub_date: str | None = None,
) -> str:
    """One RSS item; every argument goes into the document as written (escape it yourself)."""
    parts = [f"<title>{title}</title>"]
    if description:
        parts.append(f"<description>{description}</description>")
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if guid is not None:
        parts.append(f"<guid>{guid}</guid>")
    if pub_date is not None:
        parts.append(f"<pubDate>{pub_date}</pubDate>")
    return "<item>" + "".join(parts) + "</item>"


def rss(
    *items: str,
    title: str = "Hostile wire",
    encoding: str | None = "utf-8",
    doctype: str = "",
) -> str:
    """An RSS 2.0 document around `items`; `encoding=None` leaves the declaration without one."""
    declaration = (
        f'<?xml version="1.0" encoding="{encoding}"?>' if encoding else '<?xml version="1.0"?>'
    )
    return (
        f'{declaration}\n{doctype}<rss version="2.0"><channel><title>{title}</title>'
        f"<link>https://hostile.example/</link>{''.join(items)}</channel></rss>"
    )


# --- running a cycle beside the good feed ------------------------------------------------------


@dataclass
class Hostile:
    name: str
    route: Route
    language: str = "en"


def cycle_with(
    feed_server, tmp_path: Path, *hostile: Hostile, **overrides: dict
) -> tuple[Config, CycleReport]:
    """Serve the good feed and the hostile ones, run one cycle, return its config and report."""
    feed_server.routes["/world.xml"] = Route.file("world_rss20.xml")
    feeds = [{"name": GOOD_FEED, "url": feed_server.url("/world.xml"), "language": "en"}]
    for feed in hostile:
        path = f"/{feed.name}.xml"
        feed_server.routes[path] = feed.route
        feeds.append({"name": feed.name, "url": feed_server.url(path), "language": feed.language})
    config = load_config(write_config(tmp_path, feeds, **overrides))
    return config, run_cycle(config)


def fetch_row(config: Config, report: CycleReport, feed_id: str) -> dict:
    rows = query(
        config,
        "SELECT outcome, entries_seen, entries_new, error, warning FROM fetches "
        "WHERE run_id = ? AND feed_id = ?",
        [report.batch.run_id, feed_id],
    )
    assert len(rows) == 1, rows
    return dict(
        zip(("outcome", "entries_seen", "entries_new", "error", "warning"), rows[0], strict=True)
    )


def stories_of(config: Config, feed_id: str) -> list[dict]:
    columns = ("story_id", "title", "summary", "url", "guid", "published_at")
    columns += ("first_seen_at", "event_at")
    rows = query(
        config,
        f"SELECT {', '.join(columns)} FROM stories WHERE feed_id = ? ORDER BY title",
        [feed_id],
    )
    return [dict(zip(columns, row, strict=True)) for row in rows]


def assert_good_feed_stored(config: Config, report: CycleReport) -> None:
    """The good feed's every story is stored, whatever the hostile feeds did."""
    row = fetch_row(config, report, GOOD_FEED)
    assert (row["outcome"], row["entries_seen"], row["error"]) == (OK, GOOD_STORIES, None)
    titles = {s["title"] for s in stories_of(config, GOOD_FEED)}
    assert len(titles) == GOOD_STORIES
    assert "Israeli air strike hits IRGC sites in Iran; Tehran vows retaliation" in titles


def failed_with(config: Config, report: CycleReport, feed_id: str) -> str:
    """The feed failed this cycle, stored nothing, and its error says why."""
    row = fetch_row(config, report, feed_id)
    assert row["outcome"] == FAILED and row["error"], row
    assert stories_of(config, feed_id) == []
    return row["error"]


def every_stored_text(config: Config) -> list[tuple[str, str, str]]:
    """(table, column, value) for every VARCHAR and JSON value in every table."""
    with duckdb.connect(str(config.database_path), read_only=True) as con:
        columns = con.execute(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE t.table_type = 'BASE TABLE' AND c.data_type IN ('VARCHAR', 'JSON')"
        ).fetchall()
        found = []
        for table, column in columns:
            rows = con.execute(
                f'SELECT CAST("{column}" AS VARCHAR) FROM "{table}" WHERE "{column}" IS NOT NULL'
            ).fetchall()
            found.extend((table, column, value) for (value,) in rows)
    return found


def summary_output(config: Config, report: CycleReport, top: int = 20) -> str:
    """What `tensionwatch run` prints after this cycle (the summary, without Prefect)."""
    out = StringIO()
    print_summary(Console(file=out, width=200), config, summarise(config, report, top))
    return out.getvalue()


# --- character references that name no character ------------------------------------------------


def test_a_title_with_impossible_character_references_loses_only_those_characters(
    feed_server, tmp_path
):
    # &#xD800; is a lone surrogate and &#x110000; is beyond Unicode: neither is a character.
    # Expected: the item is stored without them, the other items and feeds are untouched.
    body = rss(
        item("Depot hit &#xD800; near border &#x110000; say officials", "tag:refs,1"),
        item("Second item stays whole", "tag:refs,2"),
        item("Third item stays whole", "tag:refs,3"),
    )
    config, report = cycle_with(feed_server, tmp_path, Hostile("refs", Route(body.encode())))
    assert_good_feed_stored(config, report)
    row = fetch_row(config, report, "refs")
    assert row["outcome"] == OK and row["entries_new"] == 3
    titles = [s["title"] for s in stories_of(config, "refs")]
    assert "Second item stays whole" in titles and "Third item stays whole" in titles
    (damaged,) = [t for t in titles if t.startswith("Depot hit")]
    assert "near border" in damaged and damaged.endswith("say officials")
    assert not [hit for hit in every_stored_text(config) if NOT_TEXT.search(hit[2])]


# --- a megabyte of script tags ---------------------------------------------------------------


@pytest.mark.parametrize(
    "description",
    [
        pytest.param("&lt;script&gt;" * 125_000, id="escaped-once"),  # 1 MB of "<script>"
        pytest.param("&amp;lt;script&amp;gt;" * 125_000, id="escaped-twice"),
        pytest.param("<![CDATA[" + "<script>" * 125_000 + "]]>", id="cdata"),
        pytest.param("&lt;script&gt;x&lt;/script&gt;" * 40_000, id="closed-blocks"),
    ],
)
def test_a_megabyte_of_script_tags_in_a_summary_does_not_stall_the_cycle(
    feed_server, tmp_path, description
):
    # Each opening <script> once made clean_text rescan the rest of the text: quadratic.
    # Expected: the cycle returns promptly and the story is stored, without any markup.
    body = rss(item("Script flood", "tag:script,1", description), item("After", "tag:script,2"))
    # Parsing within a 20 s limit (50× what it takes): a quadratic clean-up would exceed it and
    # fail the feed with the limit's error instead of storing the story.
    config, report = cycle_with(
        feed_server,
        tmp_path,
        Hostile("scripts", Route(body.encode())),
        parse={"timeout_seconds": 20},
    )
    assert_good_feed_stored(config, report)
    assert fetch_row(config, report, "scripts")["outcome"] == OK
    stored = {s["title"]: s for s in stories_of(config, "scripts")}
    assert set(stored) == {"Script flood", "After"}
    assert "<script" not in stored["Script flood"]["summary"]
    assert len(stored["Script flood"]["summary"]) <= MAX_SUMMARY_CHARS


# --- the parse time limit ----------------------------------------------------------------------


def many_entries(count: int) -> bytes:
    """`count` small items: 50,000 take feedparser about 4 s on this 2-core machine."""
    return rss(*(item(f"Item {n} of the flood", f"tag:flood,{n}") for n in range(count))).encode()


def test_a_body_slower_than_the_parse_time_limit_fails_alone_naming_the_limit(
    feed_server, tmp_path
):
    # 50,000 entries (3 MB) under a 0.5 s limit: the worker is stopped, the feed fails alone.
    config, report = cycle_with(
        feed_server,
        tmp_path,
        Hostile("flood", Route(many_entries(50_000))),
        parse={"timeout_seconds": 0.5},
    )
    error = failed_with(config, report, "flood")
    assert "parse.timeout_seconds" in error and "0.5 s" in error
    assert_good_feed_stored(config, report)


def test_fifty_thousand_small_entries_are_all_stored_under_the_default_limit(feed_server, tmp_path):
    # The default parse.timeout_seconds (30 s) is several times what 50,000 entries take.
    config, report = cycle_with(
        feed_server, tmp_path, Hostile("flood", Route(many_entries(50_000)))
    )
    assert config.parse.timeout_seconds == 30
    row = fetch_row(config, report, "flood")
    assert (row["outcome"], row["entries_seen"], row["entries_new"]) == (OK, 50_000, 50_000)
    assert query(config, "SELECT count(*) FROM stories WHERE feed_id = 'flood'") == [(50_000,)]
    assert_good_feed_stored(config, report)


# --- XML entity expansion ------------------------------------------------------------------------


def _billion_laughs() -> str:
    # Ten levels of ten references each: 10^10 "lol"s if expanded.
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 11)
    ]
    return f"<!DOCTYPE rss [{''.join(levels)}]>"


@pytest.mark.parametrize(
    ("doctype", "reference"),
    [
        pytest.param(_billion_laughs(), "&lol10;", id="billion-laughs"),
        # One 50 kB entity referenced 2,000 times: 100 MB from a 160 kB body.
        pytest.param(
            f'<!DOCTYPE rss [<!ENTITY big "{"x" * 50_000}">]>', "&big;" * 2_000, id="quadratic"
        ),
    ],
)
def test_entity_expansion_does_not_blow_up(feed_server, tmp_path, doctype, reference):
    # Expected: no expansion to gigabytes; the feed fails or its entries are recovered, with
    # titles and summaries within their caps; the other feed is stored.
    body = rss(
        item(f"Laughing {reference}", "tag:lol,1", description=reference),
        item("Plain neighbour", "tag:lol,2"),
        doctype=doctype,
    )
    config, report = cycle_with(
        feed_server,
        tmp_path,
        Hostile("laughs", Route(body.encode())),
        parse={"timeout_seconds": 20},
    )
    assert_good_feed_stored(config, report)
    row = fetch_row(config, report, "laughs")
    assert "parse.timeout_seconds" not in (row["error"] or "")  # no blow-up to wait for
    if row["outcome"] == FAILED:
        assert row["error"]
    else:
        assert row["outcome"] == OK and "Plain neighbour" in [
            s["title"] for s in stories_of(config, "laughs")
        ]
    for story in stories_of(config, "laughs"):
        assert len(story["title"]) <= MAX_TITLE_CHARS
        assert len(story["summary"]) <= MAX_SUMMARY_CHARS


# --- external entities -----------------------------------------------------------------------

MARKER = "TW-SECRET-7d1c0a"


def _xxe_cases(secret: Path, dtd: Path, server_dtd: str) -> dict[str, tuple[str, str]]:
    """Each case: (doctype, the reference put into the title, summary and feed title)."""
    return {
        # A general entity whose value is the local file.
        "general-entity": (
            f'<!DOCTYPE rss [<!ENTITY leak SYSTEM "file://{secret}">]>',
            "&leak;",
        ),
        # A parameter entity that pulls in a DTD file defining &leak; from the secret file.
        "parameter-entity": (
            f'<!DOCTYPE rss [<!ENTITY % remote SYSTEM "file://{dtd}"> %remote;]>',
            "&leak;",
        ),
        # The document's external DTD subset is that DTD file.
        "external-dtd": (f'<!DOCTYPE rss SYSTEM "file://{dtd}">', "&leak;"),
        # An external DTD on the network (our own test server): must not even be requested.
        "network-dtd": (
            f'<!DOCTYPE rss [<!ENTITY % remote SYSTEM "{server_dtd}"> %remote;]>',
            "&leak;",
        ),
    }


@pytest.mark.parametrize(
    "case", ["general-entity", "parameter-entity", "external-dtd", "network-dtd"]
)
def test_external_entities_never_read_local_files(feed_server, tmp_path, case):
    secret = tmp_path / "secret.txt"
    secret.write_text(MARKER + "\n", encoding="utf-8")
    dtd = tmp_path / "evil.dtd"
    dtd.write_text(
        f'<!ENTITY % file SYSTEM "file://{secret}">\n<!ENTITY leak "%file;">\n',
        encoding="utf-8",
    )
    feed_server.routes["/evil.dtd"] = Route(dtd.read_bytes(), content_type="application/xml-dtd")
    doctype, reference = _xxe_cases(secret, dtd, feed_server.url("/evil.dtd"))[case]
    body = rss(
        item(f"Report {reference} ends", "tag:xxe,1", description=f"Body {reference} ends"),
        item("Neighbour", "tag:xxe,2"),
        title=f"Wire {reference}",
        doctype=doctype,
    )
    config, report = cycle_with(feed_server, tmp_path, Hostile("xxe", Route(body.encode())))
    assert_good_feed_stored(config, report)
    leaks = [hit for hit in every_stored_text(config) if MARKER in hit[2]]
    assert leaks == []
    pending = Store.from_config(config).pending_dir
    if pending.exists():
        for path in pending.rglob("*"):
            assert not path.is_file() or MARKER.encode() not in path.read_bytes()
    assert MARKER not in json.dumps(report.batch.to_json())  # what a pending file would hold
    assert MARKER not in summary_output(config, report)
    assert feed_server.requests_to("/evil.dtd") == []


# --- encodings ---------------------------------------------------------------------------------

FRENCH = "Café Müller in Zürich – naïve “quotes”"
TURKISH = "İsrail savaş uçakları İran'daki füze üslerini vurdu; Tahran misilleme tehdidinde"


def _utf16(codec: str, bom: bytes) -> bytes:
    return bom + rss(item(FRENCH, "tag:enc,1"), encoding="utf-16").encode(codec)


@pytest.mark.parametrize(
    ("body", "content_type", "language", "expected"),
    [
        pytest.param(
            rss(item(FRENCH, "tag:enc,1"), encoding="iso-8859-1").encode("utf-8"),
            "application/rss+xml; charset=iso-8859-1",
            "en",
            FRENCH,
            id="declared-latin1-but-utf8",
        ),
        pytest.param(
            rss(item(FRENCH, "tag:enc,1"), encoding=None).encode("utf-8"),
            "application/rss+xml",
            "en",
            FRENCH,
            id="no-charset-utf8",
        ),
        pytest.param(
            rss(item("Café Müller in Zürich", "tag:enc,1"), encoding=None).encode("latin-1"),
            "application/rss+xml",
            "en",
            "Café Müller in Zürich",
            id="no-charset-latin1",
        ),
        pytest.param(
            _utf16("utf-16-le", codecs.BOM_UTF16_LE),
            "application/rss+xml",
            "en",
            FRENCH,
            id="utf16-le-bom",
        ),
        pytest.param(
            _utf16("utf-16-be", codecs.BOM_UTF16_BE),
            "application/rss+xml",
            "en",
            FRENCH,
            id="utf16-be-bom",
        ),
        pytest.param(
            _utf16("utf-16-le", codecs.BOM_UTF16_LE),
            "application/rss+xml; charset=utf-16",
            "en",
            FRENCH,
            id="utf16-le-bom-charset-utf16",
        ),
        pytest.param(
            _utf16("utf-16-be", codecs.BOM_UTF16_BE),
            "application/rss+xml; charset=utf-16",
            "en",
            FRENCH,
            id="utf16-be-bom-charset-utf16",
        ),
        pytest.param(
            rss(item(TURKISH, "tag:enc,1")).encode("cp1254"),
            RSS,
            "tr",
            TURKISH,
            id="turkish-cp1254-declared-utf8",
        ),
    ],
)
def test_feeds_in_the_wrong_or_an_unusual_encoding_are_read_as_written(
    feed_server, tmp_path, body, content_type, language, expected
):
    config, report = cycle_with(
        feed_server, tmp_path, Hostile("enc", Route(body, content_type=content_type), language)
    )
    assert_good_feed_stored(config, report)
    assert fetch_row(config, report, "enc")["outcome"] == OK
    assert [s["title"] for s in stories_of(config, "enc")] == [expected]


def test_a_turkish_feed_in_windows_1254_declared_utf8_matches_turkish_terms(feed_server, tmp_path):
    # Read as Windows-1252, "ı"/"İ" become "ý"/"Ý" and no Turkish term matches.
    body = rss(item(TURKISH, "tag:tr,1", description="Ankara gerilimin tırmanmasından endişeli"))
    config, report = cycle_with(
        feed_server, tmp_path, Hostile("haber", Route(body.encode("cp1254")), "tr")
    )
    assert_good_feed_stored(config, report)
    (story,) = stories_of(config, "haber")
    assert "ı" in story["title"] and "İ" in story["title"] and "ý" not in story["title"]
    assert story["summary"] == "Ankara gerilimin tırmanmasından endişeli"
    scores = query(
        config,
        "SELECT topic, relevant FROM story_scores WHERE story_id = ? ORDER BY topic",
        [story["story_id"]],
    )
    assert ("iran_israel", True) in scores


def test_invalid_utf8_bytes_in_an_english_feed_keep_the_rest_of_its_text(feed_server, tmp_path):
    # Bytes that are not UTF-8 (0xFF 0xFE 0x80) in one title of a UTF-8 feed; the other items
    # hold good UTF-8 (Türkiye, a dash). Expected: all stored; the good text unharmed.
    body = rss(
        item("Türkiye ships drones to Russia – report", "tag:bad,1"),
        item("Broken BYTES in this title", "tag:bad,2"),
        item("Plain ASCII title", "tag:bad,3"),
    ).encode("utf-8")
    body = body.replace(b"BYTES", b"\xff\xfe\x80")
    config, report = cycle_with(feed_server, tmp_path, Hostile("bad", Route(body)))
    assert_good_feed_stored(config, report)
    assert fetch_row(config, report, "bad")["outcome"] == OK
    titles = [s["title"] for s in stories_of(config, "bad")]
    assert "Türkiye ships drones to Russia – report" in titles
    assert "Plain ASCII title" in titles
    (broken,) = [t for t in titles if t.startswith("Broken")]
    assert broken.endswith("in this title") and not NOT_TEXT.search(broken)


# --- not a feed ----------------------------------------------------------------------------------

MALFORMED_HTML = (
    b"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>Sign in</title>"
    b"</head><body><h1>Welcome back</h1><p>Please log in</p><br></body></html>"
)
WELL_FORMED_HTML = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>"
    b"<body><h1>Welcome back</h1><p>Please log in</p></body></html>"
)


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        pytest.param(MALFORMED_HTML, "text/html; charset=utf-8", "an HTML page", id="html"),
        pytest.param(
            WELL_FORMED_HTML,
            "text/html; charset=utf-8",
            "an HTML page",
            id="well-formed-html",
        ),
        pytest.param(
            b'{"status": "ok", "items": [1, 2]}',
            "application/json",
            "not a JSON Feed",
            id="json-object",
        ),
        pytest.param(b"[1, 2, 3]", "application/json", "not a JSON Feed", id="json-array"),
        pytest.param(b"", RSS, "empty response", id="empty"),
        pytest.param(b" \r\n\t ", RSS, "empty response", id="whitespace"),
    ],
)
def test_a_body_that_is_not_a_feed_fails_with_a_clear_error(
    feed_server, tmp_path, body, content_type, expected
):
    config, report = cycle_with(
        feed_server, tmp_path, Hostile("notfeed", Route(body, content_type=content_type))
    )
    assert expected in failed_with(config, report, "notfeed")
    assert_good_feed_stored(config, report)


def test_a_json_feed_is_stored_like_any_other_feed(feed_server, tmp_path):
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON wire",
        "items": [
            {
                "id": "https://json.example/a",
                "url": "https://json.example/a",
                "title": "Israel strikes air defence sites in Iran",
                "summary": "Jets hit <b>radar</b> sites overnight",
                "date_published": "2024-08-01T16:30:00+02:00",
            },
            {
                "id": 2,
                "url": "https://json.example/b",
                "title": "Second JSON item",
                "content_html": "<p>Only <i>HTML</i> content</p>",
                "date_published": "2024-08-02T00:00:00Z",
            },
        ],
    }
    config, report = cycle_with(
        feed_server,
        tmp_path,
        Hostile("json", Route(json.dumps(document).encode(), content_type="application/feed+json")),
    )
    assert_good_feed_stored(config, report)
    assert fetch_row(config, report, "json")["outcome"] == OK
    first, second = stories_of(config, "json")
    assert (first["title"], first["url"], first["summary"]) == (
        "Israel strikes air defence sites in Iran",
        "https://json.example/a",
        "Jets hit radar sites overnight",
    )
    assert first["published_at"] == datetime(2024, 8, 1, 14, 30, tzinfo=UTC)
    assert first["event_at"] == first["published_at"]
    assert (second["title"], second["url"], second["summary"]) == (
        "Second JSON item",
        "https://json.example/b",
        "Only HTML content",
    )
    assert second["published_at"] == datetime(2024, 8, 2, tzinfo=UTC)


# --- a 5 MB title ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "title",
    [
        pytest.param("Israel strikes Iran " * 262_144, id="words"),  # 5 MiB
        pytest.param("x" * 5_242_880, id="one-word"),
    ],
)
def test_a_five_megabyte_title_is_stored_cut_to_the_maximum(feed_server, tmp_path, title):
    body = rss(item(title, "tag:huge,1"), item("Small neighbour", "tag:huge,2")).encode()
    config, report = cycle_with(
        feed_server,
        tmp_path,
        Hostile("huge", Route(body)),
        fetch={"max_body_bytes": 8_000_000},
    )
    assert_good_feed_stored(config, report)
    assert fetch_row(config, report, "huge")["outcome"] == OK
    stored = {s["title"][:5]: s["title"] for s in stories_of(config, "huge")}
    cut = stored[title[:5]]
    assert len(cut) <= MAX_TITLE_CHARS and cut.endswith("…")
    assert len(cut) > MAX_TITLE_CHARS // 2 and title.startswith(cut[:-1].rstrip())
    assert stored["Small"] == "Small neighbour"


# --- control characters --------------------------------------------------------------------------

CONTROLS = "N\x00U B\x07L \x1b[31mRED\x1b[0m \x1b]0;owned\x07 D\x7fL C1\x85\x9b\x90end"


def _as_references(text: str) -> str:
    return "".join(
        f"&#x{ord(c):x};" if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F else c for c in text
    )


@pytest.mark.parametrize("form", ["raw", "references"])
def test_control_characters_are_never_stored_or_printed(feed_server, tmp_path, form):
    # NUL, BEL, an SGR colour, an OSC "set window title", DEL and C1 controls in the title,
    # summary, link and guid of a relevant story (so that the summary prints its title), raw
    # (not well-formed XML) or as character references (which XML 1.0 forbids).
    text = CONTROLS if form == "raw" else _as_references(CONTROLS)
    body = rss(
        item(
            f"Israel strikes Iran {text}",
            f"https://ctrl.example/guid/{text}",
            description=f"Missiles {text} fired",
            link=f"https://ctrl.example/story/{text}",
        ),
        item("Israel strikes Iran again, plainly", "tag:ctrl,2"),
        title=f"Control {text} wire",
    )
    config, report = cycle_with(feed_server, tmp_path, Hostile("ctrl", Route(body.encode())))
    assert_good_feed_stored(config, report)
    assert fetch_row(config, report, "ctrl")["outcome"] == OK
    titles = [s["title"] for s in stories_of(config, "ctrl")]
    assert len(titles) == 2 and any("RED" in t and "end" in t for t in titles)
    assert [hit for hit in every_stored_text(config) if NOT_TEXT.search(hit[2])] == []
    out = summary_output(config, report)
    assert "Israel strikes Iran again, plainly" in out and "RED" in out
    assert not NOT_TEXT.search(out)


# --- dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pub_date", "published"),
    [
        pytest.param(
            "Mon, 01 Jan 1900 10:00:00 GMT", datetime(1900, 1, 1, 10, tzinfo=UTC), id="1900"
        ),
        pytest.param(
            "Fri, 01 Jan 2100 10:00:00 GMT", datetime(2100, 1, 1, 10, tzinfo=UTC), id="2100"
        ),
        pytest.param("yesterday-ish", None, id="malformed"),
        pytest.param("Thu, 01 Aug 2024 14:30:00 +9999", None, id="zone-9999"),
        pytest.param("Thu, 01 Aug 2024 14:30:00 GMT+25", None, id="zone-gmt25"),
        pytest.param("Thu, 01 Aug 2024 " + "9" * 10_000, None, id="10kB"),
        pytest.param("0000-01-01T00:00:00Z", None, id="year-0"),
        # The control: a sane time is kept and is the story's time.
        pytest.param(
            "Thu, 01 Aug 2024 14:30:00 +0000", datetime(2024, 8, 1, 14, 30, tzinfo=UTC), id="sane"
        ),
    ],
)
def test_a_story_with_an_unbelievable_date_is_stored_at_first_seen(
    feed_server, tmp_path, pub_date, published
):
    body = rss(item("Dated story", "tag:date,1", pub_date=pub_date))
    config, report = cycle_with(feed_server, tmp_path, Hostile("dates", Route(body.encode())))
    assert_good_feed_stored(config, report)
    assert fetch_row(config, report, "dates")["outcome"] == OK
    (story,) = stories_of(config, "dates")
    assert story["published_at"] == published
    sane = published is not None and datetime(1995, 1, 1, tzinfo=UTC) <= published
    sane = sane and published <= story["first_seen_at"] + timedelta(days=1)
    assert story["event_at"] == (published if sane else story["first_seen_at"])


# --- identity: repeated guids and shared links ---------------------------------------------------


@pytest.mark.parametrize("guid", ["tag:wire.example,2024:77", "77", "https://wire.example/news/77"])
def test_a_guid_whose_content_changes_is_stored_once_as_first_seen(feed_server, tmp_path, guid):
    first = rss(item("First version", guid, "Original summary"))
    config, report = cycle_with(feed_server, tmp_path, Hostile("edits", Route(first.encode())))
    assert_good_feed_stored(config, report)
    feed_server.routes["/edits.xml"] = Route(
        rss(item("Second version, rewritten", guid, "Rewritten summary")).encode()
    )
    again = run_cycle(config)
    row = fetch_row(config, again, "edits")
    assert (row["outcome"], row["entries_seen"], row["entries_new"], row["error"]) == (
        OK,
        1,
        0,
        None,
    )
    (story,) = stories_of(config, "edits")
    assert (story["title"], story["summary"]) == ("First version", "Original summary")


def test_the_guid_decides_identity_and_a_link_only_without_one(feed_server, tmp_path):
    # The behaviour (parse.story_identity): a guid names the story, whatever its link. A bare
    # guid ("1001") is scoped by the feed's host; a guid that is a URL is compared as a
    # canonical URL (no tracking parameters, http = https, no www); without a guid, the
    # canonical link is the identity.
    same_link = "https://wire.example/live/2024/08/01"
    body = rss(
        # Bare guids, one link: two stories (publishers reuse a live page's link).
        item("Bare guid one", "1001", link=same_link),
        item("Bare guid two", "1002", link=same_link),
        # URL guids that differ only by tracking parameters, scheme and www: one story.
        item("URL guid first", "https://wire.example/a?id=5", link=same_link),
        item("URL guid again", "http://www.wire.example/a?utm_source=rss&amp;id=5", link=same_link),
        # URL guids with different paths, one link: two stories.
        item("URL guid other path", "https://wire.example/b", link=same_link),
        # No guid, the same link with and without tracking: one story.
        item("No guid first", None, link="https://wire.example/c"),
        item("No guid again", None, link="https://wire.example/c?utm_medium=feed&amp;fbclid=x"),
    )
    config, report = cycle_with(feed_server, tmp_path, Hostile("ids", Route(body.encode())))
    assert_good_feed_stored(config, report)
    row = fetch_row(config, report, "ids")
    assert (row["outcome"], row["entries_seen"], row["entries_new"]) == (OK, 7, 5)
    titles = sorted(s["title"] for s in stories_of(config, "ids"))
    assert titles == sorted(
        [
            "Bare guid one",
            "Bare guid two",
            "URL guid first",
            "URL guid other path",
            "No guid first",
        ]
    )


# --- markup in titles ----------------------------------------------------------------------------

MARKUP_TITLES = {
    # (as written in the feed, as stored and shown)
    "bold": ("Israel &lt;b&gt;strikes&lt;/b&gt; Iran", "Israel strikes Iran"),
    "raw-bold": ("Israel <b>bombs</b> Iran depots", "Israel bombs Iran depots"),
    "script": (
        "Israel warns Iran &lt;script&gt;alert(1)&lt;/script&gt;",
        "Israel warns Iran",
    ),
    "markdown": (
        "Israel strikes Iran: [click](http://example.invalid)",
        "Israel strikes Iran: [click](http://example.invalid)",
    ),
    "channel": ("@channel Israel strikes Iran sites", "@channel Israel strikes Iran sites"),
    "video": ("[video] Israel strikes Iran", "[video] Israel strikes Iran"),
    "close-tag": ("LIVE [/] Israel strikes Iran", "LIVE [/] Israel strikes Iran"),
    "rich-style": (
        "[bold red]Israel[/] strikes Iran :fire:",
        "[bold red]Israel[/] strikes Iran :fire:",
    ),
    "rich-link": (
        "Iran missiles hit Israel [link=http://x.invalid]x[/link]",
        "Iran missiles hit Israel [link=http://x.invalid]x[/link]",
    ),
}


def _markup_feed() -> bytes:
    return rss(
        *(item(written, f"tag:markup,{name}") for name, (written, _) in MARKUP_TITLES.items())
    ).encode()


def test_titles_with_markup_are_stored_as_text_and_printed_literally(feed_server, tmp_path):
    config, report = cycle_with(feed_server, tmp_path, Hostile("markup", Route(_markup_feed())))
    assert_good_feed_stored(config, report)
    stored = {s["title"] for s in stories_of(config, "markup")}
    assert stored == {shown for _, shown in MARKUP_TITLES.values()}
    out = summary_output(config, report, top=30)
    for _, shown in MARKUP_TITLES.values():
        assert shown in out  # every title is relevant to iran_israel, so the table shows it
    assert "alert" not in out and "<" not in out


@pytest.fixture(scope="module")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_the_run_command_prints_markup_headlines_and_exits_0(
    prefect_harness, feed_server, tmp_path, monkeypatch, capsys
):
    # The whole `tensionwatch run` (Prefect flow, real console) once: a headline holding "[/]"
    # once raised MarkupError after the cycle was stored.
    from tensionwatch.cli import main

    monkeypatch.setenv("COLUMNS", "220")  # wide enough that no title wraps in the table

    feed_server.routes["/world.xml"] = Route.file("world_rss20.xml")
    feed_server.routes["/markup.xml"] = Route(_markup_feed())
    path = write_config(
        tmp_path,
        [
            {"name": GOOD_FEED, "url": feed_server.url("/world.xml"), "language": "en"},
            {"name": "markup", "url": feed_server.url("/markup.xml"), "language": "en"},
        ],
    )
    assert main(["run", "--config", str(path), "--top", "30"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    for _, shown in MARKUP_TITLES.values():
        assert shown in captured.out


# --- property tests ----------------------------------------------------------------------------

SEEN = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

# Bytes that steer the parsers down their different paths.
PREFIXES = [
    b"",
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><item><title>',
    b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><entry><title>',
    b"<!DOCTYPE html><html><body>",
    b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"title": ',
    b"{",
    codecs.BOM_UTF8,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
]


@pytest.fixture(scope="module")
def direct_config(tmp_path_factory) -> Config:
    """A config whose feeds are never fetched: the property tests build FetchResults."""
    folder = tmp_path_factory.mktemp("direct")
    feeds = [
        {"name": f"feed{n}", "url": f"http://127.0.0.1:9/feed{n}.xml", "language": language}
        for n, language in enumerate(["en", "tr", "ru"])
    ]
    return load_config(write_config(folder, feeds, parse={"timeout_seconds": 20}))


def fetched(config: Config, feed_id: str, body: bytes, content_type: str) -> FetchResult:
    feed = next(f for f in config.feeds if f.name == feed_id)
    return FetchResult(
        feed_id,
        feed.url,
        SEEN,
        OK,
        final_url=feed.url,
        status_code=200,
        body=body,
        headers={"content-type": content_type},
        bytes_read=len(body),
        body_hash=body_hash(body),
    )


def assert_clean_batch(batch) -> None:
    for story in batch.stories:
        for value in (story.title, story.summary, story.url or "", story.guid or ""):
            assert not NOT_TEXT.search(value), ascii(value[:200])
        assert len(story.title) <= MAX_TITLE_CHARS and len(story.summary) <= MAX_SUMMARY_CHARS
    for outcome in batch.outcomes:
        assert outcome.outcome in (OK, FAILED)
        assert outcome.outcome == OK or outcome.error
        for value in (outcome.error, outcome.warning, outcome.title):
            assert value is None or not NOT_TEXT.search(value), ascii(value[:200])


def test_arbitrary_bytes_as_a_body_never_raise_out_of_parse_and_score(direct_config):
    config = direct_config
    bodies = st.builds(
        lambda prefix, middle, suffix: prefix + middle + suffix,
        st.sampled_from(PREFIXES),
        st.binary(max_size=2_000),
        st.sampled_from([b"", b"</title></item></channel></rss>", b"]}", b"&#xD800;"]),
    )
    content_types = st.sampled_from(
        [RSS, "text/html", "application/json", "text/xml; charset=utf-16", "", "x/y; charset=nope"]
    )
    examples = []
    with feed_workers(config.topics, config.parse.timeout_seconds) as pool:

        @settings(max_examples=150, deadline=None)
        @given(st.lists(st.tuples(bodies, content_types), min_size=1, max_size=3))
        def check(documents):
            results = [
                fetched(config, f"feed{n}", body, content_type)
                for n, (body, content_type) in enumerate(documents)
            ]
            batch = parse_and_score(config, new_batch(config), results, pool)
            examples.append(len(results))
            assert [o.feed_id for o in batch.outcomes] == [r.feed_id for r in results]
            assert not any("parser process died" in (o.error or "") for o in batch.outcomes)
            assert_clean_batch(batch)

        check()
    assert len(examples) >= 100  # the property really ran


# Text that is hard for every layer: surrogates, controls, markup, entities, huge runs.
HARD_PIECES = st.one_of(
    st.characters(),  # any code point, lone surrogates included
    st.sampled_from(
        ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9b", "\ud800", "\udfff", "\ufffe", "\uffff"]
        + ["&", "<", ">", "]]>", "&#xD800;", "&#0;", "&lt;script&gt;", "[/]", "<![CDATA[", " "]
    ),
)
HARD_TEXT = st.lists(HARD_PIECES, max_size=60).map("".join)
FIELD_TEXT = st.one_of(
    HARD_TEXT,
    HARD_TEXT,
    HARD_TEXT,
    st.builds(lambda text, times: (text or "\x1b") * times, HARD_TEXT, st.integers(1_000, 20_000)),
)
FIELDS = ("title", "description", "link", "guid", "pubDate", "author", "category")


def _escaped(text: str) -> str:
    """XML-escaped, with characters UTF-8 cannot carry written as character references."""
    return "".join(f"&#x{ord(c):x};" if 0xD800 <= ord(c) <= 0xDFFF else c for c in escape(text))


def item_document(values: dict[str, str], raw: bool) -> bytes:
    fields = "".join(
        f"<{name}>{values[name] if raw else _escaped(values[name])}</{name}>" for name in FIELDS
    )
    document = rss(f"<item>{fields}</item>", item("Steady neighbour", "tag:prop,steady"))
    return document.encode("utf-8", errors="surrogatepass")


def test_any_text_in_any_item_field_never_raises_out_of_the_cycle_or_stores_controls(
    direct_config,
):
    config = direct_config
    store = Store.from_config(config)
    steady = rss(item("Steady neighbour", "tag:prop,steady")).encode()
    examples = []
    with feed_workers(config.topics, config.parse.timeout_seconds) as pool:

        @settings(
            max_examples=120,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(st.fixed_dictionaries({name: FIELD_TEXT for name in FIELDS}), st.booleans())
        def check(values, raw):
            results = [
                fetched(config, "feed0", item_document(values, raw), RSS),
                fetched(config, "feed1", steady, RSS),
            ]
            batch = parse_and_score(config, new_batch(config), results, pool)
            assert_clean_batch(batch)
            store.store_cycle(config, batch)
            examples.append(raw)
            ids = [s.story_id for s in batch.stories]
            with duckdb.connect(str(config.database_path), read_only=True) as con:
                rows = con.execute(
                    "SELECT title, summary, coalesce(url, ''), coalesce(guid, '') FROM stories "
                    "WHERE story_id IN (SELECT unnest(?))",
                    [ids],
                ).fetchall()
                notes = con.execute(
                    "SELECT feed_id, outcome, coalesce(error, '') || coalesce(warning, '') "
                    "FROM fetches WHERE run_id = ? ORDER BY feed_id",
                    [batch.run_id],
                ).fetchall()
                (steady_stored,) = con.execute(
                    "SELECT count(*) FROM stories WHERE title = 'Steady neighbour'"
                ).fetchone()
            assert len(rows) == len(ids)  # every story of the batch is stored (or was before)
            for value in [v for row in rows for v in row] + [n for _, _, n in notes]:
                assert not NOT_TEXT.search(value), ascii(value[:200])
            assert [(f, o) for f, o, _ in notes][1] == ("feed1", OK) and steady_stored == 1

        check()
    assert len(examples) >= 100 and any(examples) and not all(examples)
