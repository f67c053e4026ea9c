"""`tensionwatch audit`: samples of flagged stories and near misses, and the report on labels."""

import json

import duckdb
import pytest

from tensionwatch.audit import wilson
from tensionwatch.cli import main
from tensionwatch.config import load_config
from tests.conftest import write_config
from tests.feedserver import Route
from tests.test_cycle import run_cycle


@pytest.fixture
def config_path(feed_server, tmp_path):
    feed_server.routes["/world.xml"] = Route.file("world_rss20.xml")
    feed_server.routes["/region.atom"] = Route.file("region_atom.xml")
    feed_server.routes["/haber.xml"] = Route.file("haber_tr.xml")
    feeds = [
        {"name": "world", "url": feed_server.url("/world.xml")},
        {"name": "region", "url": feed_server.url("/region.atom")},
        {"name": "haber", "url": feed_server.url("/haber.xml"), "language": "tr"},
    ]
    path = write_config(tmp_path, feeds)
    run_cycle(load_config(path))
    return path


def sample(config_path, out, *extra):
    assert main(["audit", "--config", str(config_path), "--sample", str(out), *extra]) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_a_sample_holds_flagged_stories_and_near_misses_as_the_database_scores_them(
    config_path, tmp_path, capsys
):
    items = sample(config_path, tmp_path / "audit.jsonl", "-n", "3")
    with duckdb.connect(str(tmp_path / "tw.duckdb"), read_only=True) as con:
        for item in items:
            ((relevant, matches),) = con.execute(
                "SELECT relevant, matches FROM story_scores WHERE story_id = ? AND topic = ?",
                [item["story_id"], item["topic"]],
            ).fetchall()
            assert relevant == (item["kind"] == "flagged")
            if item["kind"] == "near_miss":
                assert json.loads(matches)["parties_named"]  # both parties named, not flagged
            assert item["label"] is None and item["title"]
    kinds = {(i["topic"], i["kind"]) for i in items}
    assert ("iran_israel", "flagged") in kinds and ("iran_israel", "near_miss") in kinds
    assert all(sum(1 for i in items if (i["topic"], i["kind"]) == k) <= 3 for k in kinds)
    assert "iran_israel: 3 of" in capsys.readouterr().out


def test_the_same_seed_draws_the_same_sample(config_path, tmp_path):
    first = sample(config_path, tmp_path / "a.jsonl", "-n", "2", "--seed", "7")
    again = sample(config_path, tmp_path / "b.jsonl", "-n", "2", "--seed", "7")
    assert [i["story_id"] for i in first] == [i["story_id"] for i in again]


def test_the_report_gives_precision_and_near_miss_rate_with_intervals(
    config_path, tmp_path, capsys
):
    out = tmp_path / "audit.jsonl"
    items = sample(config_path, out, "--topic", "iran_israel")
    flagged = [i for i in items if i["kind"] == "flagged"]
    near = [i for i in items if i["kind"] == "near_miss"]
    for n, item in enumerate(flagged):
        item["label"] = 0 if n == 0 else 1  # a reader judged one flagged story off topic
    for item in near[:1]:
        item["label"] = 0
    out.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    capsys.readouterr()
    assert main(["audit", "--report", str(out)]) == 0
    report = capsys.readouterr().out
    low, high = wilson(len(flagged) - 1, len(flagged))
    expected = f"{(len(flagged) - 1) / len(flagged):.2f} ({low:.2f}–{high:.2f}) of {len(flagged)}"
    assert expected in report
    assert f"0.00 ({0:.2f}–{wilson(0, 1)[1]:.2f}) of 1" in report
    (row,) = [line for line in report.splitlines() if "iran_israel" in line]
    assert row.rstrip().endswith(f" {len(near) - 1} │")  # the near misses left unread


def test_a_bad_label_names_its_line(tmp_path, capsys):
    out = tmp_path / "audit.jsonl"
    line = {"topic": "iran_israel", "kind": "flagged", "story_id": "x", "label": None}
    out.write_text(json.dumps(line) + "\n" + json.dumps({**line, "label": "yes"}) + "\n")
    assert main(["audit", "--report", str(out)]) == 1
    assert f"{out}:2: label must be 1" in capsys.readouterr().err


def test_the_wilson_interval_matches_known_values():
    low, high = wilson(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    assert wilson(0, 20)[0] == 0.0 and round(wilson(0, 20)[1], 3) == 0.161
    assert wilson(20, 20)[1] == 1.0
