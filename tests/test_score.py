from hypothesis import given, settings
from hypothesis import strategies as st

from tensionwatch.config import Topic
from tensionwatch.score import TopicMatcher, compile_topics, score_story
from tests.conftest import default_topics

MATCHERS = compile_topics({name: Topic.model_validate(t) for name, t in default_topics().items()})

SEED_TITLE = "US ambassador asks Türkiye to urge Iran to de-escalate with Israel"
SEED_SUMMARY = (
    "After the killing of a Hamas leader in Tehran, the envoy asked Ankara to press Iranian "
    "officials for restraint, and voiced concern that military-linked hardware and dual-use "
    "components are still exported from Türkiye to Russia despite Western sanctions."
)


def relevant(title: str, summary: str = "") -> dict[str, bool]:
    return {s.topic: s.relevant for s in score_story(MATCHERS, title, summary)}


def test_seed_story_is_relevant_to_both_topics():
    assert relevant(SEED_TITLE, SEED_SUMMARY) == {"iran_israel": True, "tr_ru": True}


def test_football_between_israeli_and_iranian_clubs_is_not_escalation():
    title = "Israeli champions beat Iranian club 2-1 in friendly"
    summary = (
        "A late strike from the striker settled the football match; the attack was relentless."
    )
    assert relevant(title, summary) == {"iran_israel": False, "tr_ru": False}


def test_hazelnut_exports_to_russia_are_not_an_export_concern():
    title = "Turkish hazelnut exports to Russia climb to a record"
    summary = "Exporters in Ordu shipped more hazelnuts to Russian buyers despite sanctions talk."
    assert relevant(title, summary) == {"iran_israel": False, "tr_ru": False}


def test_turkish_language_stories_match_turkish_terms():
    assert relevant("İsrail'in Tahran'a hava saldırısı; İran misilleme sözü verdi")["iran_israel"]
    assert relevant("TÜRKİYE'NİN RUSYA'YA ÇİFT KULLANIMLI ÜRÜN İHRACATINA YAPTIRIM")["tr_ru"]


def topic(**rules) -> TopicMatcher:
    base = {"title": "t", "actors": {"a": ["alpha"], "b": ["beta"]}}
    return TopicMatcher("t", Topic.model_validate({**base, **rules}))


def test_phrases_prefixes_and_whole_words():
    m = topic(
        signals=[
            {"term": "machine tool*", "weight": 1},
            {"term": "escalat*", "weight": 2},
            {"term": "war", "weight": 4},
        ]
    )
    hits = m.score("alpha and beta", "Machine-tools shipments escalated; no warning, Warsaw, war.")
    by_term = {s["term"]: s["count"] for s in hits.matches["signals"]}
    assert by_term == {"machine tool*": 1, "escalat*": 1, "war": 1}
    assert hits.score == 1 + 2 + 4


def test_the_longer_of_two_overlapping_terms_speaks_for_both():
    m = topic(
        signals=[
            {"term": "sanctions", "weight": 1},
            {"term": "sanctions evasion", "weight": 2},
            {"term": "escalat*", "weight": 2},
        ],
        counters=[{"term": "de-escalat*", "weight": -2}],
    )
    assert m.score("alpha beta", "sanctions evasion").score == 2
    assert m.score("alpha beta", "sanctions, then evasion").score == 1
    calm = m.score("alpha beta", "calls to de-escalate")
    assert calm.score == -2 and [s["term"] for s in calm.matches["signals"]] == ["de-escalat*"]


def test_counts_are_capped_and_title_matches_boosted():
    m = topic(signals=[{"term": "missile", "weight": 2, "cap": 2}], title_boost=1.5)
    assert m.score("alpha beta", "missile missile missile missile").score == 2 * 2
    assert m.score("alpha beta missile", "missile").score == 2 * 2 * 1.5


def test_every_actor_group_must_match_and_exclusions_veto():
    m = topic(signals=[{"term": "strike", "weight": 3}], exclusions=["football"])
    assert not m.score("alpha strike", "").relevant
    assert m.score("alpha beta strike", "").relevant
    excluded = m.score("alpha beta strike", "a football match")
    assert not excluded.relevant and excluded.score == 0
    assert excluded.matches["excluded_by"] == ["football"]


def test_a_story_with_both_actors_but_no_signal_is_not_relevant():
    assert (
        not topic(signals=[{"term": "strike", "weight": 3}]).score("alpha meets beta", "").relevant
    )


def test_rules_version_changes_with_any_rule():
    a = topic(signals=[{"term": "strike", "weight": 3}]).rules_version
    b = topic(signals=[{"term": "strike", "weight": 2}]).rules_version
    assert a != b and len(a) == 12


words = st.sampled_from(
    [
        "Iran",
        "İsrail",
        "Israel",
        "strike",
        "missile",
        "ceasefire",
        "Türkiye",
        "Russia",
        "sanctions",
        "dual-use",
        "football",
        "the",
        "of",
        "TEHRAN",
        "talks",
        "drone",
        "retaliation",
        "yaptırım",
    ]
)
sentences = st.lists(words, max_size=25).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(sentences, sentences)
def test_case_and_accents_never_change_a_score(title, summary):
    plain = score_story(MATCHERS, title, summary)
    for variant in (str.upper, str.lower, _without_accents, _turkish_upper):
        changed = score_story(MATCHERS, variant(title), variant(summary))
        assert [(s.score, s.relevant) for s in plain] == [(s.score, s.relevant) for s in changed]


def _without_accents(text: str) -> str:
    return text.translate(str.maketrans("İıüÜşŞğĞçÇöÖ", "IiuUsSgGcCoO"))


def _turkish_upper(text: str) -> str:
    """Upper case the Turkish way: i → İ, ı → I."""
    return text.replace("i", "İ").replace("ı", "I").upper()


@settings(max_examples=200, deadline=None)
@given(sentences, sentences)
def test_scoring_is_deterministic(title, summary):
    assert score_story(MATCHERS, title, summary) == score_story(MATCHERS, title, summary)


NEGATION = {"window": 3, "before": ["no", "not", "denies"], "after": ["degil", "yalanla*"]}


def test_negated_signals_count_zero_but_keep_the_story_relevant():
    m = topic(signals=[{"term": "attack*", "weight": 3}], negation=NEGATION)
    denial = m.score("Alpha denies plans to attack beta", "")
    assert denial.relevant and denial.score == 0
    assert denial.matches["signals"][0]["negated"] == 1
    assert m.score("Alpha plans to attack beta", "").score == 3 * 1.5
    # Too far back, or in the previous sentence: not a negation of this attack.
    assert m.score("alpha beta", "No comment. Alpha attacked beta.").score == 3
    assert m.score("alpha beta", "No doubt the alpha side will attack beta.").score == 3


def test_turkish_negation_after_the_verb_and_apostrophe_suffixes():
    m = topic(
        actors={"a": ["iran"], "b": ["israil"]},
        signals=[{"term": "saldiri*", "weight": 2}],
        negation=NEGATION,
    )
    denied = m.score("İran, İsrail'e saldırı planını yalanladı", "")
    assert denied.relevant and denied.score == 0
    assert m.score("İran'ın İsrail'e saldırısı sürüyor", "").score == 2 * 1.5


def test_proximity_in_one_sentence_or_within_n_words():
    sentence = topic(
        signals=[{"term": "strike", "weight": 1}],
        proximity={"actors": "sentence", "signals": "sentence"},
    )
    apart = sentence.score("", "Alpha held a parade. Beta said a strike was possible.")
    assert not apart.relevant and apart.matches["actors_apart"]
    together = sentence.score(
        "", "Alpha and beta traded threats. The U.S. urged calm after a strike."
    )
    assert not together.relevant  # the strike is in another sentence than the actors
    assert sentence.score("", "After a U.S. briefing, alpha warned beta of a strike.").relevant

    words = topic(signals=[{"term": "strike", "weight": 1}], proximity={"actors": 3})
    assert words.score("", "alpha hit beta with a strike").relevant
    assert not words.score("", "alpha said on monday that beta would strike").relevant


def test_topics_skip_stories_in_other_languages():
    m = topic(signals=[{"term": "strike", "weight": 1}], languages=["en"])
    assert m.score("alpha beta strike", "", language="en").relevant
    skipped = m.score("alpha beta strike", "", language="ru")
    assert not skipped.relevant and skipped.matches["skipped"] == "language ru"


counter_words = st.sampled_from(["ceasefire", "talks", "truce", "ateşkes", "mediation"])


@settings(max_examples=300, deadline=None)
@given(sentences, sentences, counter_words, st.booleans())
def test_a_counter_term_never_raises_a_score(title, summary, counter, in_title):
    before = score_story(MATCHERS, title, summary)
    if in_title:
        title = f"{title} {counter}"
    else:
        summary = f"{summary} {counter}"
    after = score_story(MATCHERS, title, summary)
    for old, new in zip(before, after, strict=True):
        assert new.score <= old.score or not old.relevant and new.score <= 0


@settings(max_examples=300, deadline=None)
@given(sentences, sentences)
def test_the_quick_pre_check_never_changes_a_decision(title, summary):
    """CompiledRules skips the scan where an actor group cannot occur; the full path agrees."""
    quick = score_story(MATCHERS, title, summary)
    full = [m.score(title, summary) for m in MATCHERS]
    assert [(s.score, s.relevant) for s in quick] == [(s.score, s.relevant) for s in full]
    for q, f in zip(quick, full, strict=True):
        if not q.relevant and "missing_groups" in q.matches:
            assert set(q.matches["missing_groups"]) <= set(f.matches["missing_groups"])
