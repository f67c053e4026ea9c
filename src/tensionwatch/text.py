"""Text helpers: feed HTML to clean text, and folding text for matching.

`clean_text` is what analysts read (stored in `stories`); `fold` is what the matcher sees.
Folding makes matching case-, accent- and Turkish-İ-insensitive, so "TÜRKİYE", "Türkiye",
"Turkiye" and "türkiye'nin" all contain the folded word "turkiye".
"""

from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"<[^<>]*>")
_ENTITY = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]{1,31});")
_SPACE = re.compile(r"\s+")
# Script and style blocks go with their content. Found by a linear scan, not one regex with
# `.*?` up to the closing tag: that regex rescans to the end of the text from every unclosed
# `<script`, and a summary of repeated "&lt;script&gt;" took minutes (issue 11).
_BLOCK_OPEN = re.compile(r"<\s*(script|style)\b", re.IGNORECASE)
_BLOCK_CLOSE = {
    name: re.compile(rf"<\s*/\s*{name}\s*>", re.IGNORECASE) for name in ("script", "style")
}
# Characters that are never text: C0 controls but tab and line breaks, DEL, C1 controls,
# lone surrogates (which no UTF-8 encoder, DuckDB's included, accepts) and the two
# noncharacters U+FFFE / U+FFFF. An ESC in a headline must not reach a terminal.
_NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Carriage return, vertical tab and form feed separate words but move a terminal's cursor.
_BREAKS = str.maketrans("\r\x0b\x0c", "   ")

# The longest title and summary kept: enough for any real headline and lead; a 5 MB "title"
# from a broken or hostile feed is cut (and scored) at this length.
MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 20_000


def _drop_blocks(text: str) -> str:
    if "<" not in text:
        return text
    kept: list[str] = []
    position = 0
    unclosed: set[str] = set()  # a block with no closing tag after here: its tag alone goes
    for opening in _BLOCK_OPEN.finditer(text):
        name = opening.group(1).lower()
        if opening.start() < position or name in unclosed:
            continue
        closing = _BLOCK_CLOSE[name].search(text, opening.end())
        if closing is None:
            unclosed.add(name)
            continue
        kept.append(text[position : opening.start()])
        position = closing.end()
    kept.append(text[position:])
    return " ".join(kept)


def strip_controls(text: str) -> str:
    """Text without control characters, lone surrogates or noncharacters (see _NOT_TEXT)."""
    return _NOT_TEXT.sub("", text).translate(_BREAKS)


def describe_error(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line of text safe to store and print: its type and message."""
    return strip_controls(f"{type(exc).__name__}: {exc}")[:limit]


def clean_text(raw: str | None, limit: int | None = None) -> str:
    """Strip tags, decode entities and collapse whitespace in a feed title or summary.

    The result never holds markup, control characters or lone surrogates, and is at most
    `limit` characters long (cut at a word boundary, with "…") when a limit is given.
    """
    if not raw:
        return ""
    text = _TAG.sub(" ", _drop_blocks(raw))
    # Feeds often escape their HTML twice ("&amp;#8217;", "&lt;p&gt;"): undo at most two layers,
    # so a story never reaches an analyst with markup or entities left in it.
    for _ in range(2):
        if "&" not in text:
            break
        text = html.unescape(text)
        if "<" in text:
            text = _TAG.sub(" ", _drop_blocks(text))
        if not _ENTITY.search(text):
            break
    text = _SPACE.sub(" ", strip_controls(text)).strip()
    if limit is not None and len(text) > limit:
        cut = text[: limit - 1]
        space = cut.rfind(" ")
        text = (cut[:space] if space > limit // 2 else cut).rstrip() + "…"
    return text


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
