from datetime import UTC, datetime

from tensionwatch.parse import canonical_url, parse_feed

SEEN = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def rss(items: str) -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Test wire</title>{items}</channel></rss>""".encode()


def parse(body: bytes, url: str = "https://wire.example.com/feeds/world.xml"):
    return parse_feed("wire", url, "en", body, {"content-type": "application/rss+xml"}, SEEN)


def test_relative_links_are_resolved_against_the_feed_address():
    (story,) = parse(rss("<item><title>A</title><link>/world/a-story</link></item>")).stories
    assert story.url == "https://wire.example.com/world/a-story"


def test_canonical_url_ignores_tracking_fragment_scheme_and_www():
    assert canonical_url("http://www.Example.com/a/b/?utm_source=rss&id=7&at_medium=RSS#top") == (
        canonical_url("https://example.com/a/b?id=7")
    )
    assert canonical_url("https://example.com/a?id=7") != canonical_url(
        "https://example.com/a?id=8"
    )


def test_bare_guids_are_only_unique_within_their_publisher():
    item = "<item><title>A</title><guid isPermaLink='false'>12345</guid></item>"
    one = parse(rss(item), "https://one.example.com/rss").stories[0]
    two = parse(rss(item), "https://two.example.com/rss").stories[0]
    again = parse(rss(item), "https://one.example.com/other-rss").stories[0]
    assert one.story_id != two.story_id and one.story_id == again.story_id


def test_future_and_missing_dates_fall_back_to_first_seen():
    items = (
        "<item><title>Future</title><guid>tag:x,1</guid><pubDate>Mon, 01 Jan 2029 10:00:00 GMT</pubDate></item>"
        "<item><title>Undated</title><guid>tag:x,2</guid></item>"
        "<item><title>Dated</title><guid>tag:x,3</guid><pubDate>Tue, 24 Nov 2026 23:30:00 -0500</pubDate></item>"
    )
    future, undated, dated = parse(rss(items)).stories
    assert future.published_at.year == 2029 and future.event_at == SEEN
    assert undated.published_at is None and undated.event_at == SEEN
    assert dated.event_at == datetime(2026, 11, 25, 4, 30, tzinfo=UTC)


def test_entries_without_title_or_summary_are_skipped_but_counted():
    parsed = parse(
        rss("<item><link>https://wire.example.com/x</link></item><item><title>B</title></item>")
    )
    assert parsed.entries_seen == 2 and [s.title for s in parsed.stories] == ["B"]


def test_a_feed_in_ebcdic_is_left_to_feedparser_and_read():
    # Not ASCII-compatible: the UTF-8 repair must not touch it (it once read EBCDIC as cp1252).
    document = (
        '<?xml version="1.0" encoding="cp037"?><rss version="2.0"><channel><title>Desk</title>'
        "<item><title>Iran and Israel trade warnings</title><link>https://ex.example/e</link>"
        "</item></channel></rss>"
    )
    parsed = parse_feed("f", "https://ex.example/feed", "en", document.encode("cp037"), {}, SEEN)
    assert parsed.error is None
    assert [s.title for s in parsed.stories] == ["Iran and Israel trade warnings"]


def test_an_empty_feed_with_a_flaw_is_empty_not_broken():
    # No items yet, and an HTML entity XML does not define in the channel title.
    document = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Caf&eacute; desk</title></channel></rss>'
    parsed = parse_feed("f", "https://ex.example/feed", "en", document, {}, SEEN)
    assert parsed.error is None and parsed.stories == []
    assert "malformed feed with no entries" in (parsed.warning or "")


def test_one_entry_with_an_unreadable_link_costs_only_that_entry():
    items = "".join(
        f"<item><title>Story {n}</title><link>{link}</link></item>"
        for n, link in enumerate(
            ["https://ex.example:99999/a", "http://[::1/x", "https://ex.example/fine"]
        )
    )
    parsed = parse(rss(items))
    assert parsed.error is None
    assert [s.title for s in parsed.stories] == ["Story 0", "Story 1", "Story 2"]


def test_a_json_feed_with_one_bad_byte_keeps_its_items():
    document = (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "Desk", "items": ['
        b'{"id": "1", "title": "Caf\xe9 talk", "url": "https://ex.example/1"},'
        b'{"id": "2", "title": "Iran and Israel exchange warnings", "url": "https://ex.example/2"}]}'
    )
    parsed = parse(document)
    assert parsed.error is None
    assert [s.title for s in parsed.stories] == [
        "Caf\ufffd talk",
        "Iran and Israel exchange warnings",
    ]


def test_a_body_cut_short_inside_its_last_entry_keeps_the_whole_entries_only():
    # A download cut off inside the third entry's guid: feedparser recovers it with its guid
    # and link cut short, a story that would be stored again, whole, on the next poll.
    items = "".join(
        f"<item><title>Harbour news {n}</title><link>https://ex.example/story-{n}2</link>"
        f"<guid>https://ex.example/story-{n}2</guid></item>"
        for n in (1, 2, 3)
    )
    document = f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}'
    cut = document[: document.rindex("story-32</guid>") + len("story-3")]
    parsed = parse(cut.encode())
    assert [s.url for s in parsed.stories] == [
        "https://ex.example/story-12",
        "https://ex.example/story-22",
    ]
    assert "ends inside its last entry" in parsed.warning
    # Whole, or cut between entries: every entry is kept.
    assert len(parse(document.encode()).stories) == 3
    between = document[: document.rindex("<item>")]
    assert len(parse(between.encode()).stories) == 2
