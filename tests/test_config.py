import subprocess
import sys

import pytest
import yaml

from tensionwatch.config import load_config, parse_config
from tensionwatch.errors import ConfigError
from tests.conftest import ROOT, default_topics


def minimal(**changes):
    raw = {
        "feeds": [{"name": "wire", "url": "https://example.org/rss", "language": "en"}],
        "topics": default_topics(),
    }
    raw.update(changes)
    return raw


def problems_of(raw) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_shipped_config_is_valid_and_lists_many_real_feeds():
    config = load_config(ROOT / "config.yaml")
    assert len(config.feeds) >= 20
    assert {f.language for f in config.feeds} >= {"en", "tr"}
    assert set(config.topics) == {"iran_israel", "tr_ru"}


def test_bad_weight_names_the_key_path():
    raw = minimal()
    raw["topics"]["iran_israel"]["signals"][3]["weight"] = "heavy"
    assert problems_of(raw) == ["topics.iran_israel.signals[3].weight: must be a number"]


def test_every_problem_is_reported_at_once():
    raw = minimal(fetch={"timeout_seconds": -1, "concurrency": "many"})
    raw["feeds"][0]["url"] = "ftp://example.org/feed"
    found = problems_of(raw)
    assert "fetch.timeout_seconds: must be greater than 0" in found
    assert "fetch.concurrency: must be a whole number" in found
    assert "feeds[0].url: must be an http:// or https:// address" in found


def test_unknown_keys_are_errors():
    raw = minimal(storage={"pathh": "x.duckdb"})
    assert problems_of(raw) == ["storage.pathh: unknown key"]


def test_counter_terms_must_pull_down():
    raw = minimal()
    raw["topics"]["iran_israel"]["counters"][0]["weight"] = 2
    assert problems_of(raw) == ["topics.iran_israel.counters[0].weight: must be less than 0"]


def test_environment_variables_are_expanded(monkeypatch):
    monkeypatch.setenv("TW_DB", "/srv/tw.duckdb")
    raw = minimal(storage={"path": "${TW_DB}"})
    raw["feeds"][0]["url"] = "https://${TW_HOST:-example.net}/rss"
    config = parse_config(raw)
    assert str(config.database_path) == "/srv/tw.duckdb"
    assert config.feeds[0].url == "https://example.net/rss"


def test_missing_environment_variable_names_the_key(monkeypatch):
    monkeypatch.delenv("TW_NOT_SET", raising=False)
    raw = minimal()
    raw["feeds"][0]["url"] = "https://${TW_NOT_SET}/rss"
    assert "feeds[0].url: environment variable TW_NOT_SET is not set" in problems_of(raw)


def test_duplicate_feed_names_are_refused():
    raw = minimal()
    raw["feeds"].append(dict(raw["feeds"][0], url="https://example.org/other"))
    assert any("feed name 'wire' appears twice" in p for p in problems_of(raw))


def test_relative_storage_path_is_relative_to_the_config_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(minimal()), encoding="utf-8")
    assert load_config(path).database_path == tmp_path / "data" / "tensionwatch.duckdb"


def test_cli_prints_one_line_per_problem_and_exits_2(tmp_path):
    raw = minimal()
    raw["topics"]["iran_israel"]["signals"][3]["weight"] = "heavy"
    raw["schedule"] = {"interval_minutes": 0}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tensionwatch.cli", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "topics.iran_israel.signals[3].weight: must be a number" in done.stderr
    assert "schedule.interval_minutes: must be at least 1" in done.stderr


def test_cli_reports_yaml_syntax_errors_with_a_line_number(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("feeds: [\n  - name: x\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tensionwatch.cli", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "not valid YAML at line" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_config_without_feeds_is_refused():
    assert problems_of(minimal(feeds=[])) == ["feeds: needs at least one entry"]


def test_a_secret_in_a_partly_percent_encoded_address_is_hidden(monkeypatch, tmp_path):
    monkeypatch.setenv("TW_TOKEN", "ab cd/ef-ä")
    path = tmp_path / "config.yaml"
    path.write_text(
        "feeds:\n  - {name: a, url: 'https://ex.example/f?t=${TW_TOKEN}'}\n"
        "topics:\n  t: {title: T, actors: {x: [alpha]}}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    # How an HTTP client writes the address it ended at: some characters encoded, some not.
    final_url = "https://ex.example/f?t=ab%20cd/ef-%C3%A4"
    assert config.redact(final_url) == "https://ex.example/f?t=${TW_TOKEN}"
    assert config.feeds[0].public_url == "https://ex.example/f?t=${TW_TOKEN}"


def test_schedule_problems_name_the_key():
    assert problems_of(minimal(schedule={"cron": "every quarter"})) == [
        "schedule.cron: not a cron expression (Wrong number of fields): 'every quarter'"
    ]
    assert problems_of(minimal(schedule={"cron": "*/15 * * * * *"})) == [
        "schedule.cron: needs five fields (minute hour day month weekday): '*/15 * * * * *'"
    ]
    assert problems_of(minimal(schedule={"timezone": "Europe"})) == [
        "schedule.timezone: not a time zone name such as UTC or Europe/Istanbul: 'Europe'"
    ]
    assert problems_of(minimal(schedule={"cron": "0 * * * *", "interval_minutes": 30})) == [
        "schedule: give interval_minutes or cron, not both"
    ]
    assert problems_of(minimal(schedule={"server_port": 80})) == [
        "schedule.server_port: must be at least 1024"
    ]
    fine = parse_config(minimal(schedule={"cron": "0 6 * * 1-5", "timezone": "Europe/Istanbul"}))
    assert (fine.schedule.cron, fine.schedule.timezone) == ("0 6 * * 1-5", "Europe/Istanbul")


def test_serve_refuses_a_bad_duration_with_exit_2(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(minimal()), encoding="utf-8")
    for every in ("soon", "1s", "25h"):
        done = subprocess.run(
            [sys.executable, "-m", "tensionwatch.cli", "serve", "--config", str(path),
             "--every", every],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, every
        assert "--every" in done.stderr and "Traceback" not in done.stderr


def test_the_user_agent_names_the_project_its_version_and_the_contact():
    from tensionwatch import __version__

    config = parse_config(minimal(fetch={"contact": "mailto:desk@example.org"}))
    assert (
        config.fetch.user_agent_header == f"tensionwatch/{__version__} (+mailto:desk@example.org)"
    )
    default = parse_config(minimal()).fetch.user_agent_header
    assert default == f"tensionwatch/{__version__} (+https://github.com/tensionwatch/tensionwatch)"
    whole = parse_config(minimal(fetch={"user_agent": "desk-monitor/2"}))
    assert whole.fetch.user_agent_header == "desk-monitor/2"


@pytest.mark.parametrize("contact", ["desk@example.org", "https://x.org/a b", "https://x.org/(a)",
                                     "https://exämple.org", "javascript:alert(1)"])  # fmt: skip
def test_a_contact_that_cannot_go_in_the_header_names_the_key(contact):
    (problem,) = problems_of(minimal(fetch={"contact": contact}))
    assert problem.startswith("fetch.contact: must be an http(s):// or mailto: address")


def test_polling_keys_are_checked_and_named():
    raw = minimal(polling={"min_interval_minutes": 0, "max_backoff_hours": "long"})
    raw["feeds"][0]["interval_minutes"] = 0.5
    assert sorted(problems_of(raw)) == [
        "feeds[0].interval_minutes: must be at least 1",
        "polling.max_backoff_hours: must be a number",
        "polling.min_interval_minutes: must be at least 1",
    ]
