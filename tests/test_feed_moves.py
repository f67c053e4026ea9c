"""Feeds that move: a new address in config.yaml, or an outlet redirecting its feed elsewhere."""

import yaml

from tensionwatch.config import load_config
from tests.conftest import write_config
from tests.feedserver import FeedServer, Route
from tests.test_cycle import query, run_cycle

# Served at the new address; its Last-Modified is older than the old feed's, as happens when
# an outlet moves to a new platform: a server honouring If-Modified-Since answers 304 to the
# old feed's validators.
NEW_FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- A feed at a new address, written for tensionwatch's tests: two stories. -->
<rss version="2.0"><channel><title>Moved desk</title>
<item><title>Iran warns Israel after drone strike on depot</title>
<link>https://moved.example.org/a/1</link><guid>https://moved.example.org/a/1</guid></item>
<item><title>Markets calm as oil steadies</title>
<link>https://moved.example.org/a/2</link><guid>https://moved.example.org/a/2</guid></item>
</channel></rss>"""

BARE_GUIDS = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Bare numeric guids, as many outlets publish: unique only within their publisher. -->
<rss version="2.0"><channel><title>Desk</title>
<item><title>Israel strikes IRGC site near Damascus, Iran vows response</title><guid isPermaLink="false">1001</guid></item>
<item><title>Turkish exporters face US sanctions over chips sent to Russia</title><guid isPermaLink="false">1002</guid></item>
<item><title>Weather: a mild week ahead</title><guid isPermaLink="false">1003</guid></item>
</channel></rss>"""


def test_a_new_feed_address_is_fetched_whole_not_asked_with_the_old_validators(
    feed_server, tmp_path
):
    feed_server.routes["/old.xml"] = Route.file("world_rss20.xml", conditional=True)
    feed_server.routes["/new.xml"] = Route(
        body=NEW_FEED, conditional=True, last_modified="Mon, 01 Jan 2024 00:00:00 GMT"
    )
    path = write_config(tmp_path, [{"name": "desk", "url": feed_server.url("/old.xml")}])
    run_cycle(load_config(path))

    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["feeds"][0]["url"] = feed_server.url("/new.xml")
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    moved = load_config(path)
    report = run_cycle(moved)

    (request,) = feed_server.requests_to("/new.xml")
    assert "If-Modified-Since" not in request.headers and "If-None-Match" not in request.headers
    assert len(report.new_story_ids) == 2
    assert query(
        moved, "SELECT count(*) FROM stories WHERE url LIKE 'https://moved.example.org/%'"
    ) == [(2,)]
    # The feed's row follows its new address and the new feed's validators.
    assert query(moved, "SELECT url, last_modified FROM feeds") == [
        (feed_server.url("/new.xml"), "Mon, 01 Jan 2024 00:00:00 GMT")
    ]
    # The next cycle asks the new address with its own validators, and gets 304.
    run_cycle(moved)
    assert feed_server.requests_to("/new.xml")[-1].status == 304


def test_a_feed_redirected_to_another_host_keeps_its_story_ids(feed_server, tmp_path):
    cdn = FeedServer(host="127.0.0.2").start()  # another host on this machine's loopback
    try:
        feed_server.routes["/feed.xml"] = Route(body=BARE_GUIDS)
        config = load_config(
            write_config(tmp_path, [{"name": "desk", "url": feed_server.url("/feed.xml")}])
        )
        first = run_cycle(config)
        assert len(first.new_story_ids) == 3

        # The outlet moves its feed to a CDN and redirects the old address there.
        cdn.routes["/cdn/feed.xml"] = Route(body=BARE_GUIDS + b"\n<!-- served by the CDN -->")
        feed_server.routes["/feed.xml"] = Route(redirect=cdn.url("/cdn/feed.xml"))
        second = run_cycle(config)
        assert cdn.requests_to("/cdn/feed.xml"), "the redirect was not followed"
        assert second.new_story_ids == frozenset()
        assert query(config, "SELECT count(*) FROM stories") == [(3,)]
    finally:
        cdn.stop()


RELATIVE_LINKS = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- No guids, relative links: the story is known by its link, resolved against the feed. -->
<rss version="2.0"><channel><title>Desk</title>
<item><title>Iran vows response to Israeli strike</title><link>/world/iran-vows</link></item>
<item><title>Sanctions on chips bound for Russia via Turkey</title><link>/world/chips</link></item>
</channel></rss>"""


def test_relative_links_keep_their_story_ids_when_the_feed_starts_redirecting(
    feed_server, tmp_path
):
    cdn = FeedServer(host="127.0.0.2").start()
    try:
        feed_server.routes["/feed.xml"] = Route(body=RELATIVE_LINKS)
        config = load_config(
            write_config(tmp_path, [{"name": "desk", "url": feed_server.url("/feed.xml")}])
        )
        assert len(run_cycle(config).new_story_ids) == 2
        cdn.routes["/feed.xml"] = Route(body=RELATIVE_LINKS + b"\n<!-- via the CDN -->")
        feed_server.routes["/feed.xml"] = Route(redirect=cdn.url("/feed.xml"))
        assert run_cycle(config).new_story_ids == frozenset()
        assert query(config, "SELECT count(*) FROM stories") == [(2,)]
    finally:
        cdn.stop()
