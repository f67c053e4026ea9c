"""Matching in Persian, Arabic, Hebrew and Russian: one form per letter, clitics and endings
that do not hide a term, sentences and lists as each script writes them. The rules here are
the tests' own (small, one per script); the shipped rules are judged by tests/test_languages.py.
"""

import random
import unicodedata

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tensionwatch.config import Topic
from tensionwatch.score import compile_topics, score_story
from tensionwatch.text import fold, fold_with_offsets

SIGNALS = [
    {"term": "حمله", "weight": 2, "class": "act"},  # Persian: attack
    {"term": "هجوم", "weight": 2, "class": "act"},  # Arabic: attack
    {"term": "תקיפה", "weight": 2, "class": "act"},  # Hebrew: strike
    {"term": "удар*", "weight": 2, "class": "act"},  # Russian: strike
    {"term": "تهدید", "weight": 1, "class": "threat"},
    {"term": "איום", "weight": 1, "class": "threat"},
]
TOPIC = {
    "title": "Iran–Israel in four scripts",
    "actors": {
        "iran": ["ایران", "إيران", "الحرس الثوري", "איראן*", "משמרות המהפכה", "иран*", "тегеран*"],
        "israel": [
            "اسرائیل",
            "إسرائيل",
            "رژیم صهیونیستی",
            "ישראל*",
            'צה"ל',
            "израил*",
            "тель авив*",
            "تل آویو",
        ],
    },  # fmt: skip
    "signals": SIGNALS,
    "counters": [{"term": "آتش بس", "weight": -2}, {"term": "הפסקת אש", "weight": -2}],
    # Persian puts the verb (and its negation or denial) last: a wider window.
    "negation": {"window": 5, "before": ["لم", "לא", "не"], "after": ["تکذیب*", "نکرد"]},
    "third_parties": ["السعودية", "عربستان", "סעודיה", "саудовск*"],
}
RULES = compile_topics({"t": Topic.model_validate(TOPIC)})


def scored(title: str, summary: str = "") -> tuple[bool, float]:
    (score,) = score_story(RULES, title, summary)
    return score.relevant, score.score


def actors(title: str, summary: str = "") -> dict:
    (score,) = score_story(RULES, title, summary)
    return score.matches["actors"]


def groups(title: str, summary: str = "") -> set[str]:
    return set(actors(title, summary))


def test_arabic_attached_prefixes_and_article_do_not_hide_a_term():
    # و (and), ب (with / at), ل (to), ال (the), together: وبإسرائيل, لإيران, للحرس الثوري
    # (Arabic إيران and Persian ایران fold alike: both terms find the word.)
    assert actors("هجوم وبإسرائيل على لإيران") == {
        "iran": {"إيران": 1, "ایران": 1},
        "israel": {"إسرائيل": 1, "اسرائیل": 1},
    }
    assert actors("هجوم إسرائيلي للحرس الثوري")["iran"] == {"الحرس الثوري": 1}
    # A word that merely starts with the same letters is not the term.
    assert groups("ايرانشهر واسرائيلية") == {"israel"}


def test_persian_suffixes_and_the_zero_width_non_joiner_do_not_hide_a_term():
    # ایرانی (Iranian), اسرائیلی‌ها (the Israelis, with ZWNJ), ایران‌ها, حمله‌ها (attacks)
    relevant, score = scored("حمله‌ها به اسرائیلی‌ها از سوی ایرانی‌ها")
    assert relevant and score > 0
    assert groups("ایرانی و اسرائیلی") == {"iran", "israel"}
    # A phrase written with the ZWNJ, a space, or (Arabic keyboards) other letter forms.
    for spelling in ("تل‌آویو", "تل آویو", "تل\u200cآويو"):
        assert actors(f"تهدید ایران علیه {spelling}")["israel"] == {"تل آویو": 1}, spelling


def test_hebrew_prefix_letters_and_acronyms_do_not_hide_a_term():
    # בישראל (in Israel), ומטהרן-style chains: ו + מ + איראן, ש + ב; צה"ל with either mark
    for headline in ("תקיפה בישראל ומאיראן", "תקיפה שבישראל ולאיראן", "תקיפה של ישראל באיראן"):
        assert actors(headline) == {"israel": {"ישראל*": 1}, "iran": {"איראן*": 1}}, headline
    for spelling in ('צה"ל', "צה״ל", "צהל", "וצה״ל"):
        assert actors(f"{spelling} תקף את משמרות המהפכה")["israel"] == {'צה"ל': 1}, spelling
    # Final letters fold to their plain forms: the stem איראן* finds האיראנית and איראנים.
    assert actors("האיראנית מול ישראל")["iran"] == {"איראן*": 1}


def test_russian_inflection_through_stems_and_yo_as_ye():
    for iran, israel in (("Иран", "Израиля"), ("Ирану", "Израилем"), ("Ираном", "Израилю")):
        assert scored(f"Удар по {iran}: {israel} обвинили")[0], (iran, israel)
    assert actors("ИРАНСКИЙ удар по Тель-Авиву")["israel"] == {"тель авив*": 1}
    assert fold("ещё Ёлка") == fold("еще Елка")


def test_negation_in_each_script_before_and_after_the_signal():
    # "Iran did not attack Israel" in Arabic (لم before), Hebrew (לא before), Russian (не
    # before) and Persian (denied, after): relevant, the attack counts nothing.
    for headline in (
        "إيران لم هجوم على إسرائيل",
        "איראן לא תקיפה בישראל",
        "Иран не ударил по Израилю",
        "ایران حمله به اسرائیل را تکذیب کرد",
    ):
        relevant, score = scored(headline)
        assert relevant and score == 0, headline
    assert scored("ایران حمله به اسرائیل کرد")[1] > 0


def test_arabic_question_mark_and_comma_split_sentences_and_lists():
    # Two sentences: the actors of the second are not in the first (no focus in the lead).
    assert not scored("عاجل", "هجوم في إيران؟ إسرائيل تراقب")[0]
    assert scored("عاجل", "هجوم في إيران. إسرائيل تراقب")[0] is False
    assert scored("عاجل", "هجوم إسرائيلي في إيران")[0]  # one sentence names both
    # "Saudi Arabia, Iran and Israel": a list with a third party, not a dyad.
    assert not scored("السعودية، إيران وإسرائيل تفوز بجوائز")[0]


def test_a_clitic_reading_never_hides_the_whole_word():
    # "המוסד" (the Mossad) begins like ה + "מוסד" (an institute), "الحرس الثوري" like ال +
    # "حرس الثورة", "لبنان" (Lebanon) like ل + "بن گویر": each word is also read whole.
    from tensionwatch.score import _Scanner

    scanner = _Scanner(
        [("mossad", "המוסד"), ("institute", "מוסד לביטוח"), ("irgc", "الحرس الثوري"),
         ("irgc2", "حرس الثورة"), ("lebanon", "لبنان"), ("ben gvir", "بن گویر"),
         ("basij", "בסיג'")]
    )  # fmt: skip
    for text, key in (
        ("המוסד הודיע", "mossad"),
        ("והמוסד הודיע", "mossad"),
        ("قال الحرس الثوري", "irgc"),
        ("في لبنان اليوم", "lebanon"),
        ("הבסיג' פשט", "basij"),  # a term that ends in a geresh
    ):
        assert [k for k, _, _ in scanner.find(fold(text))] == [key], text


def test_an_ending_is_found_after_the_longest_word_another_term_makes():
    # "تركية" (Turkish, fem.) is Arabic تركي + ة; it is also Persian ترکیه (Türkiye), a
    # longer term the regex reads first. Both readings are found.
    from tensionwatch.score import _Scanner

    scanner = _Scanner([("turkish", "تركي"), ("turkiye fa", "ترکیه"), ("a phrase", "تركي بن")])
    assert sorted(k for k, _, _ in scanner.find(fold("شركة تركية"))) == ["turkish", "turkiye fa"]


def test_rules_of_one_language_speak_only_for_its_stories():
    # Persian رئیسی (Raisi) folds like Arabic الرئيسي ("main"): under by_language.fa it
    # names Iran in a Persian story, and nothing in an Arabic one.
    topic = {
        "title": "t",
        "languages": ["fa", "ar"],
        "actors": {"iran": ["إيران"], "israel": ["إسرائيل"]},
        "signals": [{"term": "هجوم", "weight": 2}],
        "by_language": {
            "fa": {
                "actors": {"iran": ["رئیسی"]},
                "signals": [{"term": "حمله", "weight": 2}],
                "negation": {"after": ["نکرد"]},
            }
        },
    }
    rules = compile_topics({"t": Topic.model_validate(topic)})

    def decide(title, language):
        (score,) = score_story(rules, title, "", language)
        return score.relevant, score.score

    assert decide("حمله رئیسی به اسرائیل", "fa") == (True, 2.0 * 1.5)
    assert decide("رئیسی: حمله نکرد اسرائیل", "fa") == (True, 0.0)
    assert decide("هجوم على المعبر الرئيسي في إسرائيل", "ar") == (False, 0.0)
    assert decide("هجوم على المعبر الرئيسي في إسرائيل", None)[0]  # language unknown: all rules


def test_by_language_rules_must_fit_the_topic():
    import pytest
    from pydantic import ValidationError

    base = {"title": "t", "languages": ["en"], "actors": {"a": ["alpha"]}}
    # A language the topic does not read: its rules are kept, and speak for nothing.
    kept = {"fa": {"actors": {"a": ["آلفا"]}}}
    rules = compile_topics({"t": Topic.model_validate({**base, "by_language": kept})})
    (score,) = score_story(rules, "آلفا", "", "fa")
    assert not score.scored
    with pytest.raises(ValidationError, match="names no actor group of the topic: b"):
        Topic.model_validate({**base, "by_language": {"en": {"actors": {"b": ["beta"]}}}})


def test_a_single_cyrillic_letter_with_a_dot_does_not_end_a_sentence():
    # "г." (год, the year) is an abbreviation: the lead is one sentence naming both.
    assert scored("Главное", "Иран в 2024 г. нанес удар по Израилю")[0]
    assert not scored("Главное", "Иран нанес удар. Израиль молчит")[0]


def test_explain_shows_the_words_as_written(capsys, tmp_path):
    from tensionwatch.cli import main

    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"feeds": [{"name": "f", "url": "http://127.0.0.1:9/f.xml"}], "topics": {"t": TOPIC}},
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    title = "هجومٌ وَبِإسرائيلَ على إيران"
    assert main(["explain", "--config", str(config), "--text", title]) == 0
    out = capsys.readouterr().out
    assert "«إسرائيلَ»" in out and "«إيران»" in out  # as written: hamza, harakat and all
    assert "«هجومٌ»" in out


# Property: spelling variants that readers of each script take as the same text never change
# a decision or a score.
WORDS = [
    "ایران", "اسرائیل", "حمله", "تهدید", "آتش بس", "رژیم صهیونیستی", "سپاه", "و", "به",
    "إيران", "إسرائيل", "هجوم", "الحرس الثوري", "السعودية", "على", "لم", "؟", "،",
    "איראן", "ישראל", "תקיפה", "איום", 'צה"ל', "לא", "בין", "ו", "הפסקת אש",
    "Иран", "Израиль", "удар", "не", "и", "Тегеран", ".", "1403", "۱۴۰۳",
]  # fmt: skip
text = st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join)


def _sprinkle(marks: str, rng: random.Random):
    def spell(value: str) -> str:
        out = []
        for char in value:
            out.append(char)
            if char.isalpha() and rng.random() < 0.3:
                out.append(rng.choice(marks))
        return "".join(out)

    return spell


def _variants(seed: int):
    rng = random.Random(seed)
    swap = {"ی": "ي", "ي": "ی", "ک": "ك", "ه": "ة", "ا": "أ"}
    return {
        "harakat": _sprinkle("\u064e\u064f\u0650\u0651\u0652\u064b", rng),
        "tatweel": _sprinkle("\u0640", rng),
        "niqqud": _sprinkle("\u05b0\u05b4\u05b7\u05b8\u05bc\u05b9", rng),
        "bidi marks": _sprinkle("\u200e\u200f", rng),
        # Arabic-keyboard letters in Persian text (and the reverse); a final ه as ة; alef
        # with hamza where it is often dropped.
        "letter forms": lambda t: "".join(swap.get(c, c) if rng.random() < 0.5 else c for c in t),
        "gershayim": lambda t: t.replace('"', "\u05f4"),
        "zwnj": lambda t: t.replace("آتش بس", "آتش\u200cبس"),
        "case": str.upper,
        "digits": lambda t: t.replace("1403", "١٤٠٣"),
        "nfd": lambda t: unicodedata.normalize("NFD", t),
    }


@settings(max_examples=150, deadline=None)
@given(text, text, st.integers(0, 2**32))
def test_spelling_variants_of_each_script_never_change_a_decision(title, summary, seed):
    plain = scored(title, summary)
    for name, spell in _variants(seed).items():
        if name == "letter forms":
            # ه → ة only where the word ends (the only place ة is written).
            spelled = (spell(title), spell(summary))
            if any("ة" in w[:-1] for part in spelled for w in part.split()):
                continue
        else:
            spelled = (spell(title), spell(summary))
        assert scored(*spelled) == plain, name


@settings(max_examples=150, deadline=None)
@given(text)
def test_fold_with_offsets_points_back_at_the_original(value):
    for spell in _variants(7).values():
        original = spell(value)
        folded, origins = fold_with_offsets(original)
        assert folded == fold(original)
        assert len(origins) == len(folded) + 1
        assert origins == sorted(origins) and origins[-1] == len(original)
        for index, char in enumerate(folded):
            assert char in fold(original[origins[index]]), (original, index)
