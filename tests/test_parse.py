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
