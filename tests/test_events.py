"""Copies of one story from several outlets are one event; a series is not one event."""

from datetime import UTC, datetime, timedelta

from tensionwatch.events import StoryRef, group_events, title_words

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
DAY = timedelta(days=2)


def ref(story_id, feed, title, hours=0.0, event_id=None):
    return StoryRef(story_id, feed, title, T0 + timedelta(hours=hours), event_id)


def events(new, recent=(), window=DAY):
    return {g.story_id: g.event_id for g in group_events(new, recent, window)}


def test_lightly_edited_copies_from_other_outlets_are_one_event():
    new = [
        ref("a", "wire", "Drone strike hits fuel depot near the northern port city"),
        ref(
            "b",
            "paper",
            "Drone strike hits fuel depot near northern port city - The Daily Paper",
            1,
        ),
        ref(
            "c", "radio", "Fuel depot near northern port city hit by drone strike, officials say", 2
        ),
        ref("d", "tv", "Parliament passes the budget after a night of debate", 1),
    ]
    assert events(new) == {"a": "a", "b": "a", "c": "a", "d": "d"}
    grouped = {g.story_id: g for g in group_events(new, [], DAY)}
    assert grouped["a"].similarity is None and 0.5 <= grouped["c"].similarity < 1


def test_a_series_and_the_same_feed_are_not_copies():
    new = [
        ref("d325", "wire", "War at a glance: what we know on day 325 of the invasion"),
        ref("d326", "paper", "War at a glance: what we know on day 326 of the invasion", 24),
        ref("live1", "live", "Ukraine: the most important events of the last hours", 0),
        ref("live2", "live", "Ukraine: the most important events of the last hours", 12),
    ]
    assert events(new) == {"d325": "d325", "d326": "d326", "live1": "live1", "live2": "live2"}


def test_copies_outside_the_window_are_other_events():
    new = [
        ref("a", "wire", "Drone strike hits fuel depot near the northern port city"),
        ref("b", "paper", "Drone strike hits fuel depot near the northern port city", 72),
    ]
    assert events(new) == {"a": "a", "b": "b"}


def test_grouping_is_incremental_new_stories_join_stored_events():
    stored = [ref("old", "wire", "Central bank raises rates to a record to defend the currency",
                  event_id="first")]  # fmt: skip
    new = [ref("n", "paper", "Central bank raises rates to record to defend currency", 3)]
    assert events(new, stored) == {"n": "first"}


def test_title_words_drop_stop_words_case_accents_and_outlet_suffix():
    assert title_words("Türkiye'nin İHRACATI düştü | Haber Sitesi Adı Burada Uzun") == title_words(
        "turkiye'nin ihracati dustu"
    )
    assert "the" not in title_words("The strike on the depot")
