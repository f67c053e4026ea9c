import json

import pytest

from tensionwatch.cli import main
from tensionwatch.evaluation import spearman
from tests.conftest import ROOT


def test_spearman_handles_ties_and_direction():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([4, 3, 2, 1], [1, 2, 3, 4]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(5 / 6)
    assert spearman([1, 1, 1], [1, 2, 3]) is None


def test_eval_command_prints_scores_and_the_items_it_got_wrong(tmp_path, capsys):
    items = [
        {
            "id": "a",
            "title": "Israeli jets strike IRGC base in Iran",
            "summary": "",
            "iran_israel": 1,
            "tr_ru": 0,
            "intensity": "high",
        },
        {
            "id": "b",
            "title": "Iran warns Israel of harsh retaliation",
            "summary": "",
            "iran_israel": 1,
            "tr_ru": 0,
            "intensity": "medium",
        },
        {
            "id": "c",
            "title": "Tehran and Jerusalem trade barbs",
            "summary": "",
            "iran_israel": 1,
            "tr_ru": 0,
            "intensity": "low",
        },
        {
            "id": "d",
            "title": "Iranian film wins award at Israeli festival after threats",
            "summary": "",
            "iran_israel": 0,
            "tr_ru": 0,
            "intensity": None,
        },
    ]
    labelled = tmp_path / "set.jsonl"
    labelled.write_text("\n".join(json.dumps(i) for i in items), encoding="utf-8")
    assert main(["eval", "--config", str(ROOT / "config.yaml"), "--set", str(labelled)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.lstrip("│ ").startswith("iran_israel"))
    # a and b found, c missed (no Israel term), d wrongly found: P = R = F1 = 2/3.
    cells = [cell.strip() for cell in row.split("│")[2:8]]
    assert cells == ["all", "4", "3", "0.667", "0.667", "0.667"]
    assert "missed  c: Tehran and Jerusalem trade barbs" in out
    assert "wrongly d: Iranian film wins award" in out


def test_eval_names_the_bad_line_of_a_broken_set(tmp_path, capsys):
    labelled = tmp_path / "set.jsonl"
    labelled.write_text('{"title": "x", "iran_israel": 0}\n{oops\n', encoding="utf-8")
    assert main(["eval", "--config", str(ROOT / "config.yaml"), "--set", str(labelled)]) == 1
    assert f"{labelled}:2: not valid JSON" in capsys.readouterr().err


def test_explain_free_text_shows_negation_exclusion_and_points(capsys):
    args = [
        "explain",
        "--config",
        str(ROOT / "config.yaml"),
        "--text",
        "Iran denies plans to attack Israel after Tehran strike",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "iran_israel — Iran–Israel escalation" in out and "· relevant · score 4.5" in out
    assert "signal/act attack* (title) weight 2 negated" in out
    assert "= strike: 3 × 1 × title boost → +4.5" in out
    assert main([*args, "--summary", "The football friendly was called off."]) == 0
    out = capsys.readouterr().out
    # The lead says what the story is about: a football match, not a strike.
    assert main(["explain", "--config", str(ROOT / "config.yaml"), "--text",
                 "Iran meets Israel in Vienna", "--summary", "The football friendly was called off."]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "· not relevant · score 0" in out and "excluded by football (summary, sentence 1)" in out


def test_explain_shows_listed_parties_and_commentary(capsys):
    base = ["explain", "--config", str(ROOT / "config.yaml"), "--text"]
    story = ["Iran president blames enemies", "--summary", "Israel, Jordan and Egypt fear Iran."]
    assert main([*base, *story]) == 0
    out = capsys.readouterr().out
    assert "israel* (summary, sentence 1, in a list with a third party: not counted)" in out
    assert "third party" not in out.replace("in a list with a third party", "")
    assert main([*base, "Analysis: why Israel struck Iran"]) == 0
    out = capsys.readouterr().out
    assert "· relevant · score 1.35" in out
    assert "commentary ('analysis' in the headline): score × 0.3" in out


def test_eval_prints_the_both_named_baseline_beside_the_rules(tmp_path, capsys):
    # Both parties named in every item; the rules tell the confrontation from the tourism
    # story, the baseline cannot: baseline P = 1/2, R = 1, F1 = 2/3; rules P = R = F1 = 1.
    items = [
        {"title": "Iran fires missiles at Israel", "iran_israel": 1, "intensity": "high"},
        {"title": "Visitors from Israel and Iran fill Cappadocia hotels", "iran_israel": 0},
    ]
    labelled = tmp_path / "set.jsonl"
    labelled.write_text("\n".join(json.dumps(i) for i in items), encoding="utf-8")
    assert main(["eval", "--config", str(ROOT / "config.yaml"), "--set", str(labelled)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.lstrip("│ ").startswith("iran_israel"))
    cells = [cell.strip() for cell in row.split("│")[2:9]]
    assert cells == ["all", "2", "1", "1.000", "1.000", "1.000", "0.500 / 1.000 / 0.667"]
    assert "both named: the baseline" in out


def test_default_rules_hold_on_the_team_set_and_rank_by_intensity():
    """The team's labelled set is the rules' regression test: F1 ≥ 0.95 per topic, and the
    score ranks stories by labelled intensity (Spearman ≥ 0.5 over positives), so an
    analysis piece does not outscore a strike."""
    from tensionwatch.config import load_config
    from tensionwatch.evaluation import evaluate, load_labelled
    from tensionwatch.score import compile_topics

    rules = compile_topics(load_config(ROOT / "config.yaml").topics)
    items = load_labelled(ROOT / "tests" / "data" / "labelled_news.jsonl")
    # English and Turkish here; the four later languages in tests/test_languages.py.
    results = evaluate(rules, [i for i in items if i["language"] in ("en", "tr")])
    assert {r.topic for r in results} == {"iran_israel", "tr_ru"}
    for result in results:
        assert result.f1 >= 0.95, result.topic
        assert result.spearman is not None and result.spearman >= 0.5, result.topic


def test_eval_reports_each_language_of_the_set_under_its_topic(tmp_path, capsys):
    # English found; Turkish missed (no Israel term in it): per language, and over both.
    items = [
        {"title": "Iran fires missiles at Israel", "language": "en", "iran_israel": 1,
         "intensity": "high"},
        {"title": "Tahran'dan sert uyarı", "language": "tr", "iran_israel": 1,
         "intensity": "medium"},
        {"title": "Tahran'da kar yağışı", "language": "tr", "iran_israel": 0},
    ]  # fmt: skip
    labelled = tmp_path / "set.jsonl"
    labelled.write_text("\n".join(json.dumps(i) for i in items), encoding="utf-8")
    assert main(["eval", "--config", str(ROOT / "config.yaml"), "--set", str(labelled)]) == 0
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 9 and cells[1] in ("all", "en", "tr"):
            rows[(cells[0] or rows.get("topic", ""), cells[1])] = cells[2:7]
            rows["topic"] = cells[0] or rows.get("topic", "")
    assert rows[("iran_israel", "all")] == ["3", "2", "1.000", "0.500", "0.667"]
    assert rows[("iran_israel", "en")] == ["1", "1", "1.000", "1.000", "1.000"]
    assert rows[("iran_israel", "tr")] == ["2", "1", "0.000", "0.000", "0.000"]
