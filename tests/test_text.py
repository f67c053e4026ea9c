import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from tensionwatch.text import clean_text, fold
from tests.conftest import turkish_lower, turkish_upper, without_accents


def test_turkish_and_accented_spellings_fold_to_one_word():
    for spelling in ["TÜRKİYE", "Türkiye", "Turkiye", "türkiye'nin", "TURKİYE'DE", "turkıye"]:
        assert fold(spelling).split("'")[0] == "turkiye", spelling


def test_dotted_and_dotless_i_meet():
    assert fold("İSRAİL") == fold("İsrail") == fold("ısrail") == "israil"
    assert fold("İRAN'IN") == "iran'in"


def test_dashes_and_curly_apostrophes_are_unified():
    assert fold("dual‑use “goods” Iran’s") == 'dual use "goods" iran\'s'


def test_clean_text_strips_markup_and_decodes_entities_even_when_escaped_twice():
    raw = '<p>Tehran&#8217;s <a href="x">reply</a> &amp;amp; <img src="y"/> &lt;b&gt;more&lt;/b&gt;</p>'
    assert clean_text(raw) == "Tehran’s reply & more"


def test_clean_text_collapses_whitespace_and_drops_scripts():
    assert clean_text("  one\n\n two <script>alert(1)</script> three ") == "one two three"
    assert clean_text(None) == ""


# Text in the scripts the topics are written for: ASCII, Latin-1, Latin Extended-A/B and
# Latin Extended Additional (Vietnamese), combining accents, the punctuation fold unifies, and
# the Turkish letters (İ ı and a decomposed "i" + dot above) often. Not other scripts: Greek
# final sigma ("ς" upper-cases to "Σ", which lower-cases to "σ") and the Greek iota subscript
# U+0345 (upper-cases to "Ι") are not case-blind under fold, and no topic term is Greek.
LATIN = (
    "".join(
        chr(c)
        for c in [
            *range(0x20, 0x7F),
            *range(0xA0, 0x250),
            *range(0x1E00, 0x1F00),
            *range(0x300, 0x370),
        ]
        if c != 0x0345
    )
    + "’‘ʼ´`′“”„«»″‐‑‒–—―−"
)
TURKISH = ["i\u0307", "I\u0307", *"İıIiŞşĞğÇçÖöÜü"]  # "i\u0307" is Python's "İ".lower()
latin_text = st.lists(st.sampled_from(TURKISH) | st.sampled_from(LATIN), max_size=60).map("".join)


@settings(max_examples=200)
@given(st.text(max_size=80) | latin_text)
def test_fold_is_idempotent(text):
    assert fold(fold(text)) == fold(text)


@settings(max_examples=300)
@given(latin_text)
def test_fold_is_blind_to_case_turkish_i_accents_and_composition(text):
    folded = fold(text)
    assert not any(unicodedata.combining(c) for c in folded)
    assert folded == folded.lower()
    for spell in (
        str.upper,
        str.lower,
        turkish_upper,
        turkish_lower,
        without_accents,
        lambda t: unicodedata.normalize("NFC", t),
        lambda t: unicodedata.normalize("NFD", t),
    ):
        assert fold(spell(text)) == folded, spell


def test_line_and_page_breaks_separate_words_and_never_reach_a_terminal():
    from tensionwatch.text import strip_controls

    assert strip_controls("Iran\rIsrael\x0cTurkey\x0bRussia") == "Iran Israel Turkey Russia"
