import json
import os
import random
import subprocess
import sys
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tensionwatch.config import Topic
from tensionwatch.score import LISTED, TopicMatcher, compile_topics, score_story
from tensionwatch.text import fold
from tests.conftest import ROOT, default_topics, turkish_lower, turkish_upper, without_accents

TOPICS = {name: Topic.model_validate(t) for name, t in default_topics().items()}
MATCHERS = compile_topics(TOPICS)

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


def test_every_actor_group_must_match_and_an_exclusion_in_the_headline_vetoes():
    m = topic(signals=[{"term": "strike", "weight": 3}], exclusions=["football"])
    assert not m.score("alpha strike", "").relevant
    assert m.score("alpha beta strike", "").relevant
    excluded = m.score("alpha beta football strike", "")
    assert not excluded.relevant and excluded.score == 0
    assert excluded.matches["excluded_by"] == ["football"]


def test_a_headline_listing_both_parties_without_a_signal_is_not_relevant():
    m = topic(signals=[{"term": "strike", "weight": 3}])
    listed = m.score("Tourists from alpha and beta fill the hotels", "")
    assert not listed.relevant and listed.matches["no_signal"]
    assert not m.score("Alpha, beta top the list of visitors", "").relevant
    assert not m.score("Alpha chef opens a restaurant in the heart of beta", "").relevant  # far


def test_a_headline_that_joins_the_parties_needs_no_signal_word():
    m = topic(signals=[{"term": "strike", "weight": 3}])
    joined = m.score("Why alpha hates beta", "")
    assert joined.relevant and joined.matches["focus"] == "headline" and joined.score == 0
    assert m.score("Alpha accuses beta", "").relevant
    assert m.score("The next round between alpha and beta", "").relevant  # a pair, not a list


def test_rules_version_changes_with_any_rule():
    a = topic(signals=[{"term": "strike", "weight": 3}]).rules_version
    b = topic(signals=[{"term": "strike", "weight": 2}]).rules_version
    assert a != b and len(a) == 12


def test_rules_version_follows_the_scorer_but_not_the_topic_title(monkeypatch):
    import tensionwatch.score

    rules = {"title": "Alpha–Beta", "actors": {"a": ["alpha"], "b": ["beta"]}}
    before = Topic.model_validate(rules).rules_version()
    assert Topic.model_validate({**rules, "title": "Renamed"}).rules_version() == before
    monkeypatch.setattr(tensionwatch.score, "SCORER_VERSION", tensionwatch.score.SCORER_VERSION + 1)
    assert Topic.model_validate(rules).rules_version() != before


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


def _config_words() -> list[str]:
    """Every word of every term and negator of the shipped topics, without the prefix `*`."""
    found: set[str] = set()
    for rules in default_topics().values():
        terms = [t for group in rules["actors"].values() for t in group]
        terms += [s["term"] for s in rules.get("signals", []) + rules.get("counters", [])]
        terms += rules.get("exclusions", []) + rules["negation"]["before"]
        terms += rules["negation"]["after"]
        found.update(w.rstrip("*") for t in terms for w in t.split())
    return sorted(found)


CONFIG_WORDS = _config_words()
# config.yaml writes its Turkish terms folded ("saldiri*"); feeds spell them like this.
TURKISH_WORDS = [
    "İsrail'in", "İran'ın", "Tahran'a", "Kudüs", "Hamaney", "Türkiye'nin", "Rusya'ya",
    "saldırı", "saldırısı", "füze", "misilleme", "ateşkes", "yaptırım", "yaptırımları",
    "çift", "kullanımlı", "ihracatçı", "gümrük", "kaçakçılık", "takım", "tezgâhı",
    "nükleer", "zenginleştirme", "savaş", "gerginliği", "azaltmak", "düşman", "İHA",
    "yalanladı", "değil", "olmadı", "ŞİDDETLİ", "GÜÇLÜ", "ÇATIŞMA", "ığdır", "şöyle",
]  # fmt: skip
# Latin letters with the accents of the feeds' languages, and the Turkish alphabet's own.
ACCENTED = "àáâãäåæçèéêëìíîïñòóôõöøœùúûüýÿßÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØŒÙÚÛÜÝŸğĞıİşŞ"
_ACCENTS_OF = {
    "a": "àáâäå", "c": "ç", "e": "èéêë", "g": "ğ", "i": "ıîïí", "n": "ñ",
    "o": "òóôöø", "s": "ş", "u": "ùúûü", "y": "ýÿ",
}  # fmt: skip


@st.composite
def _accented_term_word(draw) -> str:
    """A real term word with some letters accented and its case mixed ("SALDIRI", "sáldırı")."""
    word = draw(st.sampled_from(CONFIG_WORDS))
    letters = []
    for char in word:
        if char in _ACCENTS_OF and draw(st.booleans()):
            char = draw(st.sampled_from(_ACCENTS_OF[char]))
        letters.append(char.upper() if draw(st.booleans()) else char)
    return "".join(letters)


rich_words = st.one_of(
    st.sampled_from(CONFIG_WORDS),
    _accented_term_word(),
    st.sampled_from(TURKISH_WORDS),
    st.text(st.sampled_from(ACCENTED + "abcdefghijklmnopqrstuvwxyzIRT'-"), min_size=1, max_size=8),
)
separators = st.sampled_from([" ", " ", " ", ", ", ". ", "-", "'", " — "])
rich_sentences = st.lists(st.tuples(rich_words, separators), max_size=25).map(
    lambda pairs: "".join(word + sep for word, sep in pairs)
)


SPELLINGS = {
    "upper": str.upper,
    "lower": str.lower,
    "turkish upper": turkish_upper,
    "turkish lower": turkish_lower,
    "without accents": without_accents,
    "NFC": lambda text: unicodedata.normalize("NFC", text),
    "NFD": lambda text: unicodedata.normalize("NFD", text),
}


@settings(max_examples=200, deadline=None)
@given(rich_sentences, rich_sentences)
def test_case_accents_and_composition_never_change_a_score(title, summary):
    # ß is kept: its upper case "SS" folds to the same "ss" (fold maps ß → ss).
    plain = [(s.topic, s.relevant, s.score) for s in score_story(MATCHERS, title, summary)]
    for name, spell in SPELLINGS.items():
        changed = score_story(MATCHERS, spell(title), spell(summary))
        assert [(s.topic, s.relevant, s.score) for s in changed] == plain, name


def test_accented_and_decomposed_turkish_spellings_score_like_ascii():
    """A Turkish headline typed, upper-cased or sent decomposed (NFD) scores the same."""
    headline = "İsrail'in Tahran'a füze saldırısı; İran misilleme sözü verdi"
    expected = [(s.relevant, s.score) for s in score_story(MATCHERS, headline, "")]
    assert expected[0] == (True, (3 + 2 + 3) * 1.5)  # füze*, saldiri*, misilleme* in the title
    for spell in SPELLINGS.values():
        assert [(s.relevant, s.score) for s in score_story(MATCHERS, spell(headline), "")] == (
            expected
        )


# Determinism. A story's scores and matches are a function of the story and the rules only:
# not of the process's string-hash seed (set iteration order), nor of what was scored before.
# `story_json` records everything an analyst sees: score, relevance, matches (in their order)
# and every occurrence that `explain` lists, with what was made of it.
Story = tuple[str, str, str | None]


def story_json(rules, story: Story) -> str:
    title, summary, language = story
    scores = [asdict(s) for s in score_story(rules, title, summary, language)]
    explained = [m.explain_folded(fold(title), fold(summary), language) for m in rules]
    full = [asdict(s) for s, _ in explained]
    hits = [[[h.term, h.field, h.start, h.end, h.status] for h in found] for _, found in explained]
    return json.dumps([scores, full, hits], ensure_ascii=False)


def _batch() -> list[Story]:
    stories: list[Story] = [
        (SEED_TITLE, SEED_SUMMARY, "en"),
        ("Israeli champions beat Iranian club 2-1", "A late strike settled the football match.", None),
        ("Turkish hazelnut exports to Russia climb", "Sanctions talk; tourism and diesel too.", None),
        # Several exclusions at once: their order in excluded_by must not follow a set's.
        ("Iran and Israel trade missile threats", "FIFA, UEFA, Olympic and World Cup football chiefs, "
         "a chess federation and a film festival all met in Tehran and Tel Aviv.", "en"),
        ("Turkey, Russia: sanctions on hazelnut, tourism, crude, diesel and natural gas", "Gazprom "
         "and superyacht owners in Istanbul; grain corridor and price cap talks; S-400.", None),
        ("Iran denies plans to attack Israel", "Tehran did not strike; no missiles, no drones.", "en"),
        ("İran, İsrail'e saldırı planını yalanladı", "Tahran misilleme yok dedi.", "tr"),
        ("Israel and Iran agree ceasefire talks after missile strikes", "Calls for restraint, "
         "mediation and de-escalation; negotiations and diplomacy; a thaw.", "en"),
        ("Israel strikes Iran", "Missiles and drones.", "ru"),
        ("Stock markets rise", "Nothing about either topic.", None),
        ("Iran warns of retaliation", "Drones, missiles and threats, but no second actor.", None),
        ("Iran Israel missile missile missile missile", "drone drone drone drone strike", None),
        ("TÜRKİYE'NİN RUSYA'YA ÇİFT KULLANIMLI ÜRÜN İHRACATINA YAPTIRIM", "Gümrük kaçakçılık "
         "soruşturması; takım tezgâhı ve mikroelektronik parçalar; ödemeler, hesaplar.", "tr"),
        (unicodedata.normalize("NFD", "Türkiye'den Rusya'ya yarı iletken ve rulman ihracatı"),
         unicodedata.normalize("NFD", "ABD Hazinesi ikincil yaptırım uyarısı yaptı."), "tr"),
        ("Tehran’s de‑escalation talks with Israel — no strike", "Iran’s IRGC “vows” revenge.", None),
        ("Turkish banks Halkbank, Ziraat and VakifBank face OFAC penalties over Russia payments",
         "Dual-use chips, CNC machine tools, ball bearings and avionics re-exported via Mersin "
         "customs; Ankara rejects the secondary sanctions threat; delisting and waivers.", "en"),
        ("", "", None),
    ]  # fmt: skip
    rng = random.Random(20240601)  # seeded: the same batch in every process
    pool = [*CONFIG_WORDS, *TURKISH_WORDS]
    for _ in range(30):
        title = " ".join(rng.choices(pool, k=rng.randint(3, 12)))
        summary = " ".join(rng.choices(pool, k=rng.randint(0, 40)))
        stories.append((title, summary, rng.choice([None, "en", "tr"])))
    return stories


BATCH = _batch()


def batch_json() -> str:
    """The batch scored in this process; a fresh process with another hash seed runs it too."""
    return json.dumps([story_json(MATCHERS, story) for story in BATCH])


def _batch_in_fresh_process(hash_seed: str) -> subprocess.CompletedProcess[str]:
    script = "import sys; from tests.test_score import batch_json; sys.stdout.write(batch_json())"
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def test_scores_and_matches_do_not_depend_on_the_hash_seed():
    here = json.loads(batch_json())
    # The batch exercises the paths where a set could leak its order into the results.
    decoded = [json.loads(story) for story in here]
    assert any(len(t["matches"].get("excluded_by", [])) >= 3 for s in decoded for t in s[0])
    assert {t["topic"] for s in decoded for t in s[0] if t["relevant"]} == {"iran_israel", "tr_ru"}
    seeds = ("0", "1", "2")  # at least two differ from this process's seed, whatever it is
    with ThreadPoolExecutor(len(seeds)) as pool:
        runs = list(pool.map(_batch_in_fresh_process, seeds))
    for seed, run in zip(seeds, runs, strict=True):
        assert run.returncode == 0, run.stderr
        for story, ours, theirs in zip(BATCH, here, json.loads(run.stdout), strict=True):
            assert theirs == ours, f"PYTHONHASHSEED={seed}: {story}"


@cache
def alone() -> dict[Story, str]:
    """Each story of the batch alone, scored by rules compiled just for it."""
    return {story: story_json(compile_topics(TOPICS), story) for story in BATCH}


stories = st.tuples(
    sentences | rich_sentences, sentences | rich_sentences, st.sampled_from([None, "en", "tr"])
)


@settings(max_examples=50, deadline=None)
@given(st.lists(stories, max_size=10), st.randoms(use_true_random=False))
def test_a_story_scores_the_same_whatever_was_scored_before_it(others, rng):
    """The batch and some other stories, shuffled: each batch story scores as it does alone."""
    expected = alone()
    mixed = [*BATCH, *others]
    rng.shuffle(mixed)
    for story in mixed:
        result = story_json(MATCHERS, story)
        if story in expected:
            assert result == expected[story], story


@settings(max_examples=200, deadline=None)
@given(stories, st.lists(stories, min_size=1, max_size=5))
def test_scoring_a_story_again_after_others_gives_the_same_result(story, others):
    first = story_json(MATCHERS, story)
    for other in others:
        story_json(MATCHERS, other)
    assert story_json(MATCHERS, story) == first


def test_stories_under_one_headline_are_scored_on_their_own_summaries():
    """Live blogs reuse a headline: each story is scored on its own summary, in any order."""
    live = "Live: the Middle East and Türkiye, latest updates"
    strikes = (live, "Israel struck Iran's air defences overnight; Tehran vows revenge.")
    exports = (live, "Turkish exporters face new sanctions over dual-use goods sent to Russia.")
    for first, second in ((strikes, exports), (exports, strikes), (strikes, strikes)):
        for story in (first, second):
            assert relevant(*story) == {"iran_israel": story is strikes, "tr_ru": story is exports}


NEGATION = {"window": 3, "before": ["no", "not", "denies"], "after": ["degil", "yalanla*"]}


def test_negated_signals_count_zero_but_keep_the_story_relevant():
    m = topic(
        signals=[{"term": "attack*", "weight": 3}],
        negation=NEGATION,
        focus={"lead_sentences": 2},
    )
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


def test_a_lead_sentence_with_a_signal_brings_the_parties_together():
    m = topic(
        signals=[{"term": "strike", "weight": 1}, {"term": "warn*", "weight": 1, "class": "threat"}]
    )
    lead = m.score("Alpha warns of a strike", "Officials blamed beta for the strike on a depot.")
    assert lead.relevant and lead.matches["focus"] == "lead sentence 1"
    # The other party in the lead, but the signal only in a headline about something else:
    quiet = m.score("Alpha warns of floods", "Beta sent rescue teams to the coast.")
    assert not quiet.relevant and quiet.matches["no_signal"]
    # An act in the headline is the event the lead goes on to place.
    act = m.score("Strike hits alpha depot", "Officials blamed beta.")
    assert act.relevant and act.matches["focus"] == "lead sentence 1"


def test_beyond_the_lead_a_sentence_counts_only_on_its_own_under_an_actor_headline():
    m = topic(signals=[{"term": "strike", "weight": 1}], focus={"lead_sentences": 1})
    body = "Markets were calm. Analysts said alpha blamed beta for the strike."
    assert m.score("Alpha depot burns", body).matches["focus"] == "body sentence 2"
    # The same sentence under a headline about neither (a round-up): not relevant.
    roundup = m.score("Your morning digest", body)
    assert not roundup.relevant and roundup.matches["actors_apart"]
    # Only the headline helps a lead sentence, not a later one.
    assert not m.score("Alpha depot burns", "Markets were calm. Beta denied a strike.").relevant
    assert (
        not topic(
            signals=[{"term": "strike", "weight": 1}], focus={"lead_sentences": 1, "body": False}
        )
        .score("Alpha depot burns", body)
        .relevant
    )


def test_parties_named_far_apart_in_one_sentence_are_a_passing_mention():
    m = topic(signals=[{"term": "bomb", "weight": 1}], focus={"sentence_window": 8})
    passing = m.score(
        "A court ruling",
        "A man was sentenced in alpha after being accused of organising a bomb attack in a "
        "distant city and of working with beta.",
    )
    assert not passing.relevant and passing.matches["parties_named"]
    assert m.score("A court ruling", "Alpha accused beta of a bomb attack.").relevant


def test_an_exclusion_beyond_the_headline_rules_out_only_its_own_sentence():
    m = topic(
        signals=[{"term": "strike", "weight": 1}, {"term": "exports", "weight": 1}],
        exclusions=["football"],
        focus={"lead_sentences": 1},
    )
    # Football as background, far from where the story says what it is about:
    story = m.score(
        "Alpha exports reach beta",
        "Alpha blamed beta for a strike. Alpha and beta once met in a football final.",
    )
    assert story.relevant and "excluded_by" not in story.matches
    # The only sentence that brings them together is about football:
    sport = m.score("Alpha depot", "Alpha and beta strike in a football final.")
    assert not sport.relevant and sport.matches["excluded_by"] == ["football"]
    # A lead that says the headline is about sport vetoes it, unless the headline reports an act.
    assert not m.score("Alpha meets beta", "The football final went to penalties.").relevant
    assert m.score("Alpha strike on beta", "It delayed a football final.").relevant


def test_a_phrase_that_labels_something_else_names_no_actor():
    m = topic(signals=[{"term": "strike", "weight": 1}], not_actors=["beta cup"])
    assert not m.score("Alpha strike at the beta cup", "").relevant
    assert m.score("Alpha strike on beta", "").relevant


def test_an_actor_inside_a_longer_actor_term_of_another_group_does_not_count():
    # Turkish "Kudüs" (Jerusalem) inside "Kudüs Gücü" (the Quds Force).
    m = TopicMatcher(
        "t",
        Topic.model_validate(
            {
                "title": "t",
                "actors": {"iran": ["kudus gucu", "iran"], "israel": ["kudus", "israil*"]},
                "signals": [{"term": "saldir*", "weight": 1}],
            }
        ),
    )
    quds = m.score("Kudüs Gücü komutanı saldırı düzenledi", "")
    assert not quds.relevant and quds.matches["missing_groups"] == ["israel"]
    assert m.score("Kudüs Gücü İsrail'e saldırdı", "").relevant


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


def test_a_long_story_about_both_topics_with_the_s400_as_background_is_relevant_to_both():
    article = json.loads((ROOT / "tests/fixtures/reference_article.json").read_text())
    assert len(article["summary"]) > 2500
    scores = {s.topic: s for s in score_story(MATCHERS, article["title"], article["summary"])}
    assert scores["iran_israel"].relevant and scores["tr_ru"].relevant
    # The S-400 and CAATSA sentences are background: they rule out only themselves.
    assert scores["tr_ru"].matches["focus"].startswith("body sentence")
    assert "excluded_by" not in scores["tr_ru"].matches


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        (
            "Iran and Israel meet in a tense World Cup qualifier",
            "Israel's striker scored twice as Iran's defence collapsed under attack after attack.",
        ),
        (
            "Film about an Iranian family in Israel wins festival award",
            "The director said the movie was about war, threats and the fear of a strike.",
        ),
        (
            "Türkiye's hazelnut exports to Russia hit a record",
            "Exporters said payments from Russian buyers arrived despite sanctions on banks.",
        ),
        (
            "Russian tourists flock to Turkish resorts",
            "Tourism operators in Antalya said sanctions on flights had eased for Russian visitors.",
        ),
        (
            "Türkiye and Russia discuss reviving the grain corridor",
            "Ankara said sanctions on Russian agricultural exports must be addressed first.",
        ),
        (
            "Akkuyu nuclear plant: Russia ships reactor parts to Türkiye",
            "Rosatom said the components cleared Turkish customs despite sanctions.",
        ),
        (
            "TurkStream flows steady as Türkiye pays Russia for gas",
            "Payments go through a bank spared from sanctions, officials said.",
        ),
    ],
)
def test_hard_negatives_stay_out(title, summary):
    assert relevant(title, summary) == {"iran_israel": False, "tr_ru": False}


def test_a_party_listed_with_a_third_party_is_one_of_several_not_a_side():
    m = topic(
        signals=[{"term": "threat*", "weight": 1}, {"term": "strike", "weight": 2}],
        third_parties=["gamma", "delta"],
    )
    # In a lead sentence: beta named only in a list with others does not face alpha.
    listed = m.score("Alpha leaders meet", "Beta, gamma and delta fear the threat from alpha.")
    assert not listed.relevant and listed.matches["actors_apart"]
    assert m.score("Alpha leaders meet", "Beta fears the threat from alpha.").relevant
    # "the gamma-beta conflict" folds to "gamma beta": a list too.
    assert not m.score("Alpha strike", "It came as the gamma-beta talks stalled.").relevant
    # In the headline only when every party is listed…
    assert not m.score("Alpha, gamma, beta, delta: a world of threats", "").relevant
    # …not when one party stands on its own facing the others,
    assert m.score("Alpha warns beta and gamma of threats", "").relevant
    # …nor when the headline names one party and the lead names the other.
    assert m.score("Strike on depots serving alpha and gamma", "Beta was hit by a strike.").relevant
    story, hits = m.explain_folded(
        "alpha leaders meet", "beta, gamma and delta fear alpha threats."
    )
    assert any(h.status == LISTED for h in hits)


def test_signals_outside_the_focus_do_not_raise_the_score():
    m = topic(signals=[{"term": "strike*", "weight": 2}])
    short = m.score("Alpha strikes beta", "")
    background = "Alpha has fought beta before. In 2019 alpha strikes hit beta twice. "
    long = m.score("Alpha strikes beta", "Officials confirmed it. " + background * 3)
    assert short.relevant and long.relevant and long.score == short.score
    assert long.matches["signals"][0]["far"] == 3
    # The sentence that makes the story relevant counts.
    body = m.score("Alpha report", "Officials met. Alpha strikes hit beta.")
    assert body.matches["focus"] == "body sentence 2" and body.score == 2


def test_commentary_headlines_score_less_but_stay_relevant():
    rules = {"words": ["analysis", "why"], "questions": True, "factor": 0.25}
    m = topic(signals=[{"term": "strike*", "weight": 2}], commentary=rules)
    report = m.score("Alpha strikes beta", "")
    for headline in (
        "Analysis: alpha strikes beta",
        "ANALYSIS | Alpha strikes beta",
        "Drones and depots: why alpha strikes beta",
        "Will alpha strike beta again?",
    ):
        story = m.score(headline, "")
        assert story.relevant and story.score == report.score * 0.25, headline
        assert story.matches["commentary"] in ("analysis", "why", "?")
    # A commentary word inside the sentence is not a label.
    assert m.score("Alpha strikes beta; analysts say why", "").score == report.score
    assert "commentary" not in report.matches
