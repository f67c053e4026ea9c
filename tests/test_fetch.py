from tensionwatch.config import Feed, FetchSettings
from tensionwatch.fetch import FAILED, NOT_MODIFIED, OK, UNCHANGED, FeedState, fetch_feeds
from tests.feedserver import Route

FAST = FetchSettings(
    timeout_seconds=1,
    deadline_seconds=3,
    retries=1,
    retry_backoff_seconds=0.05,
    user_agent="tensionwatch-test/1",
)


def feed(server, path, name="f") -> Feed:
    return Feed(name=name, url=server.url(path))


def fetch_one(server, path, state=None, settings=FAST):
    return fetch_feeds([feed(server, path)], {"f": state} if state else {}, settings)[0]


def test_conditional_get_gets_304_and_skips_the_body(feed_server):
    feed_server.routes["/a.xml"] = Route.file("world_rss20.xml", conditional=True)
    first = fetch_one(feed_server, "/a.xml")
    assert first.outcome == OK and first.etag and first.last_modified and first.body
    second = fetch_one(
        feed_server,
        "/a.xml",
        FeedState(etag=first.etag, last_modified=first.last_modified, body_hash=first.body_hash),
    )
    assert second.outcome == NOT_MODIFIED and second.body is None
    sent = feed_server.requests_to("/a.xml")[-1].headers
    assert sent["If-None-Match"] == first.etag
    assert sent["If-Modified-Since"] == first.last_modified
    assert sent["User-Agent"] == "tensionwatch-test/1"


def test_same_body_without_validators_is_unchanged(feed_server):
    feed_server.routes["/a.xml"] = Route.file("region_atom.xml")
    first = fetch_one(feed_server, "/a.xml")
    again = fetch_one(feed_server, "/a.xml", FeedState(body_hash=first.body_hash))
    assert again.outcome == UNCHANGED and again.body is None


def test_server_errors_are_retried_then_reported(feed_server):
    feed_server.routes["/down"] = Route(status=503)
    result = fetch_one(feed_server, "/down")
    assert result.outcome == FAILED
    assert result.error == "HTTP 503 Service Unavailable (after 2 attempts)"
    assert len(feed_server.requests_to("/down")) == 2


def test_client_errors_are_not_retried(feed_server):
    result = fetch_one(feed_server, "/missing")
    assert result.outcome == FAILED and result.error == "HTTP 404 Not Found"
    assert len(feed_server.requests_to("/missing")) == 1


def test_a_feed_that_never_answers_in_time_fails_alone(feed_server):
    feed_server.routes["/slow"] = Route.file("world_rss20.xml", delay=3)
    feed_server.routes["/fast"] = Route.file("world_rss20.xml")
    slow, fast = fetch_feeds(
        [feed(feed_server, "/slow", "slow"), feed(feed_server, "/fast", "fast")],
        {},
        FetchSettings(
            timeout_seconds=0.5, deadline_seconds=1.5, retries=1, retry_backoff_seconds=0.05
        ),
    )
    assert slow.outcome == FAILED and "timed out" in slow.error
    assert fast.outcome == OK


def test_body_cap_is_enforced_while_streaming(feed_server):
    feed_server.routes["/huge"] = Route(body=b"<rss>" + b"x" * 300_000 + b"</rss>", gzip=True)
    result = fetch_one(feed_server, "/huge", settings=FetchSettings(max_body_bytes=100_000))
    assert result.outcome == FAILED and "100000-byte cap" in result.error


def test_gzip_bodies_are_decoded(feed_server):
    feed_server.routes["/gz"] = Route.file("world_rss20.xml", gzip=True)
    result = fetch_one(feed_server, "/gz")
    assert result.outcome == OK and result.body.startswith(b"<?xml")
    assert "content-encoding" not in result.headers


def test_redirects_are_followed_and_capped(feed_server):
    feed_server.routes["/old"] = Route(redirect="/new")
    feed_server.routes["/new"] = Route.file("world_rss20.xml")
    moved = fetch_one(feed_server, "/old")
    assert moved.outcome == OK and moved.final_url.endswith("/new")
    feed_server.routes["/loop"] = Route(redirect="/loop")
    looped = fetch_one(feed_server, "/loop", settings=FetchSettings(max_redirects=3))
    assert looped.outcome == FAILED and looped.error == "more than 3 redirects"


def test_unreachable_host_is_an_error_value(feed_server):
    # A port nobody listens on: connection refused, retried, then reported.
    result = fetch_feeds([Feed(name="f", url="http://127.0.0.1:9/feed")], {}, FAST)[0]
    assert result.outcome == FAILED and result.error.startswith("cannot connect")
