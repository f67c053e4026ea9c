from hypothesis import given
from hypothesis import strategies as st

from tensionwatch.text import clean_text, fold


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


@given(st.text(max_size=80))
def test_fold_is_idempotent_and_case_blind(text):
    assert fold(fold(text)) == fold(text)
    assert fold(text.upper()) == fold(text.lower()) or not text.isascii()
