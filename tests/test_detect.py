"""Spike detection (detect.py) over windows built here: no database, no clock."""

import math
import random
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from tensionwatch.config import AlertSettings
from tensionwatch.detect import (
    PARTIAL_COVERAGE,
    SPIKE,
    TOO_FEW_OUTLETS,
    TOO_FEW_STORIES,
    WARMING_UP,
    Window,
    baseline_of,
    judge,
    replay,
)

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
SIX = timedelta(hours=6)


def window(start, hours=6, tension=4, all_stories=400, outlets=None, coverage=1.0, topic="t"):
    return Window(
        topic=topic,
        start=start,
        end=start + timedelta(hours=hours),
        tension_stories=tension,
        all_stories=all_stories,
        events=tension,
        score_sum=5.0 * tension,
        outlets=min(tension, 6) if outlets is None else outlets,
        coverage=coverage,
    )


def quiet(days, seed=1, mean=4, start=START):
    """Six-hour windows of a topic at its usual level: a few tension stories among 400."""
    rng = random.Random(seed)
    return [window(start + i * SIX, tension=max(0, round(rng.gauss(mean, 1.5))))
            for i in range(days * 4)]  # fmt: skip


def alerts(decisions):
    return [(d.verdict.window.start, d.verdict.severity, d.why) for d in decisions if d.alert]


SETTINGS = AlertSettings(windows_hours=[6])


def test_weeks_at_the_usual_level_raise_nothing():
    decisions = replay(quiet(60), SETTINGS)
    assert alerts(decisions) == []
    judged = [d.verdict for d in decisions if d.verdict.z is not None]
    assert len(judged) == 60 * 4 - SETTINGS.warmup_windows and max(v.z for v in judged) < 3.5


def test_a_spike_alerts_once_and_a_spike_that_lasts_only_when_it_grows():
    history = quiet(30)
    spike_at = history[-1].end
    hot = [
        window(spike_at, tension=16),  # a new spike
        window(spike_at + SIX, tension=17),  # still hot, same severity: no page
        window(spike_at + 2 * SIX, tension=45),  # hotter: severity rises, one more alert
        window(spike_at + 3 * SIX, tension=45),
    ]
    decisions = replay(history + hot, SETTINGS)
    assert [(when, why) for when, _, why in alerts(decisions)] == [
        (spike_at, "new spike"),
        (spike_at + 2 * SIX, "severity rose"),
    ]
    first, *_ = [d for d in decisions if d.alert]
    assert first.verdict.severity in ("elevated", "high") and first.verdict.z >= 3.5
    assert [d.why for d in decisions[-4:]] == [
        "new spike", "still elevated", "severity rose", "still elevated"
    ]  # fmt: skip
    assert decisions[-1].state.severity == "critical"


def test_back_to_normal_after_a_quiet_day_and_the_cooldown_holds_a_flapping_topic():
    settings = AlertSettings(windows_hours=[6], cooldown_hours=48, clear_after_hours=24)
    history = quiet(30)
    at = history[-1].end
    sequence = [window(at, tension=20)]  # alert
    sequence += quiet(1, seed=5, start=at + SIX)  # four quiet windows: back to normal
    again = sequence[-1].end
    sequence += [window(again, tension=20)]  # within 48 h of the alert: cooldown
    sequence += quiet(3, seed=6, start=again + SIX)
    later = sequence[-1].end  # 4.5 days after the first alert
    sequence += [window(later, tension=20)]
    decisions = replay(history + sequence, settings)
    assert [(when, why) for when, _, why in alerts(decisions)] == [
        (at, "new spike"),
        (later, "new spike"),
    ]
    whys = {d.verdict.window.start: d.why for d in decisions}
    assert whys[again] == "cooldown"
    assert "back to normal" in [d.why for d in decisions if at < d.verdict.window.start < again]


def test_no_alert_while_warming_up():
    history = quiet(3)  # 12 windows: fewer than warmup_windows (20)
    decisions = replay(history + [window(history[-1].end, tension=60)], SETTINGS)
    assert alerts(decisions) == []
    assert decisions[-1].verdict.reason == WARMING_UP and decisions[-1].verdict.z is None


def test_a_silent_topic_neither_divides_by_zero_nor_alerts_on_one_story():
    silent = [window(START + i * SIX, tension=0) for i in range(40)]  # MAD = 0, median = 0
    settings = AlertSettings(windows_hours=[6], min_stories=1, min_outlets=1)
    floor = math.sqrt(3 / 8) + 3.5 / 4  # stories: √(median + 3/8) + threshold / 4
    one = judge(window(silent[-1].end, tension=1), silent, settings)
    assert one.spread == pytest.approx(floor / 400) and one.z == pytest.approx(1 / floor)
    assert one.reason != SPIKE
    assert not judge(window(silent[-1].end, tension=5, outlets=3), silent, settings).hot
    eight = judge(window(silent[-1].end, tension=8, outlets=3), silent, settings)
    assert eight.reason == SPIKE and eight.z == pytest.approx(8 / floor) and eight.z > 5


def test_fewer_stories_than_min_stories_is_no_spike():
    history = quiet(30, mean=0.3)
    lower = AlertSettings(windows_hours=[6], threshold=2.5)  # four stories reach it
    verdict = judge(window(history[-1].end, tension=4), history, lower)
    assert verdict.z >= 2.5 and verdict.reason == TOO_FEW_STORIES


def test_one_outlet_repeating_itself_is_no_spike():
    history = quiet(30)
    verdict = judge(window(history[-1].end, tension=30, outlets=1), history, SETTINGS)
    assert verdict.z >= 3.5 and verdict.reason == TOO_FEW_OUTLETS
    assert judge(window(history[-1].end, tension=30, outlets=2), history, SETTINGS).hot


def test_partial_coverage_raises_no_spike_and_stays_out_of_the_baseline():
    history = quiet(30)
    at = history[-1].end
    partial = judge(window(at, tension=30, coverage=0.2), history, SETTINGS)
    assert partial.reason == PARTIAL_COVERAGE
    # Three days when most feeds failed, read as zero stories: left out, they do not make the
    # usual level look like a spike afterwards.
    outage = [window(at + i * SIX, tension=0, coverage=0.1) for i in range(12)]
    after = window(outage[-1].end, tension=5)
    baseline, _ = baseline_of(after, history + outage, SETTINGS)
    assert baseline and not set(baseline) & set(outage)
    verdict = judge(after, history + outage, SETTINGS)
    assert verdict.median == statistics.median(w.value("share") for w in baseline)
    assert verdict.baseline_windows == len(baseline) == 28 * 4 - 12


def test_a_weekend_at_weekday_volume_is_a_spike_for_a_weekend():
    # Events per day: about 30 on weekdays, 10 at weekends, ten weeks of it.
    rng = random.Random(3)
    days = []
    for i in range(70):
        start = START + timedelta(days=i)
        level = 10 if start.weekday() >= 5 else 30
        days.append(window(start, hours=24, tension=level + rng.randint(-2, 2), all_stories=2000))
    saturday = START + timedelta(days=75)  # weekday 5
    assert saturday.weekday() == 5
    busy = window(saturday, hours=24, tension=30, all_stories=2000)
    seasonal = AlertSettings(windows_hours=[24], metric="events")
    flat = AlertSettings(windows_hours=[24], metric="events", seasonal_weeks=0)
    like_with_like = judge(busy, days, seasonal)
    assert like_with_like.seasonal and like_with_like.hot
    assert like_with_like.baseline_windows == 8  # the Saturdays of the last eight weeks
    assert not judge(busy, days, flat).hot  # against every day, a Saturday at 30 looks usual
    monday = window(START + timedelta(days=77), hours=24, tension=31, all_stories=2000)
    assert not judge(monday, days, seasonal).hot


def test_severity_follows_z():
    history = quiet(30)
    at = history[-1].end
    verdicts = [judge(window(at, tension=n), history, SETTINGS) for n in (15, 20, 40)]
    assert [v.severity for v in verdicts] == ["elevated", "high", "critical"]
    assert [3.5 <= verdicts[0].z < 5, 5 <= verdicts[1].z < 8, verdicts[2].z >= 8] == [True] * 3


def test_six_hour_and_daily_windows_of_one_spike_page_once():
    history = quiet(30)
    daily = []
    for d in range(30):
        parts = history[d * 4 : d * 4 + 4]
        daily.append(
            window(START + timedelta(days=d), hours=24,
                   tension=sum(p.tension_stories for p in parts), all_stories=1600)
        )  # fmt: skip
    at = history[-1].end
    spike = [window(at + i * SIX, tension=t) for i, t in enumerate((4, 25, 4, 4))]
    day = window(at, hours=24, tension=37, all_stories=1600)
    decisions = replay(history + daily + spike + [day], AlertSettings())
    assert len(alerts(decisions)) == 1
    assert [d.why for d in decisions if d.verdict.window == day] == ["still elevated"]


def test_a_calm_day_does_not_end_a_spike_whose_last_hours_were_hot():
    # Hot six-hour windows from 06:00 on, while the day as a whole stays below the threshold:
    # at midnight the topic is still elevated, so the next hot window is no new page.
    settings = AlertSettings(windows_hours=[6, 24], cooldown_hours=6)
    history = quiet(30)
    daily = [
        window(START + timedelta(days=d), hours=24, all_stories=1600,
               tension=sum(w.tension_stories for w in history[d * 4 : d * 4 + 4]))
        for d in range(30)
    ]  # fmt: skip
    day = history[-1].end
    hot = [window(day + i * SIX, tension=t) for i, t in enumerate((4, 16, 16, 16, 16))]
    calm_day = window(day, hours=24, all_stories=1600, tension=20)  # below for a day
    decisions = replay(history + daily + hot + [calm_day], settings)
    assert [d.why for d in decisions if d.alert] == ["new spike"]
    at_midnight = [d for d in decisions if d.verdict.window == calm_day][0]
    assert not at_midnight.verdict.hot and at_midnight.state.severity is not None
    assert decisions[-1].verdict.window == hot[-1] and decisions[-1].why == "still elevated"
