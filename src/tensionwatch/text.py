"""Text helpers: feed HTML to clean text, and folding text for matching.

`clean_text` is what analysts read (stored in `stories`); `fold` is what the matcher sees.
Folding makes matching case-, accent- and Turkish-İ-insensitive, so "TÜRKİYE", "Türkiye",
"Turkiye" and "türkiye'nin" all contain the folded word "turkiye".
"""

from __future__ import annotations

import html
import re
import unicodedata

_BLOCK_TAGS = re.compile(r"<\s*(script|style)\b.*?<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^<>]*>")
_ENTITY = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]{1,31});")
_SPACE = re.compile(r"\s+")


def clean_text(raw: str | None) -> str:
    """Strip tags, decode entities and collapse whitespace in a feed title or summary."""
    if not raw:
        return ""
    text = _TAG.sub(" ", _BLOCK_TAGS.sub(" ", raw))
    # Feeds often escape their HTML twice ("&amp;#8217;", "&lt;p&gt;"): undo at most two layers,
    # so a story never reaches an analyst with markup or entities left in it.
    for _ in range(2):
        if "&" not in text:
            break
        text = html.unescape(text)
        if "<" in text:
            text = _TAG.sub(" ", _BLOCK_TAGS.sub(" ", text))
        if not _ENTITY.search(text):
            break
    return _SPACE.sub(" ", text).strip()


def _fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    # Latin-1 Supplement and Latin Extended-A/B: map each letter to its unaccented base.
    for code in range(0x00C0, 0x0250):
        char = chr(code)
        base = "".join(
            c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c)
        )
        if base and base != char and base.isascii():
            table[code] = base.lower()
    table.update(
        {
            ord("İ"): "i",  # Turkish capital dotted I: str.lower() would give "i" + U+0307
            ord("ı"): "i",  # Turkish dotless i: "ISRAIL" and "İsrail" must meet
            ord("ß"): "ss",
            ord("Æ"): "ae",
            ord("æ"): "ae",
            ord("Ø"): "o",
            ord("ø"): "o",
            ord("Đ"): "d",
            ord("đ"): "d",
            ord("Ł"): "l",
            ord("ł"): "l",
            ord("Œ"): "oe",
            ord("œ"): "oe",
            0x0307: "",  # combining dot above, left by some upstream lower-casing of İ
        }
    )
    for apostrophe in "’‘ʼ´`′":
        table[ord(apostrophe)] = "'"
    for quote in "“”„«»″":
        table[ord(quote)] = '"'
    # Hyphens and dashes become spaces, so "dual-use" and "dual use" fold alike.
    for dash in "-‐‑‒–—―−":
        table[ord(dash)] = " "
    table[0x00A0] = " "
    table[0x00AD] = ""  # soft hyphen
    return table


_FOLD = _fold_table()
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def fold(text: str) -> str:
    """Lower-case, strip accents, unify Turkish I/İ/ı, apostrophes and dashes, for matching."""
    if text.isascii():
        # The common case for English: only case, hyphens and backticks to unify (C-speed).
        return text.lower().replace("-", " ").replace("`", "'")
    folded = text.translate(_FOLD).lower()
    if not folded.isascii():
        # Rare path (other scripts, unusual accents): full compatibility decomposition.
        decomposed = unicodedata.normalize("NFKD", folded)
        folded = _COMBINING.sub("", decomposed).translate(_FOLD).lower()
    return folded
