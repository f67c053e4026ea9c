"""Text helpers: feed HTML to clean text, and folding text for matching.

`clean_text` is what analysts read (stored in `stories`); `fold` is what the matcher sees.
Folding makes matching case-, accent- and Turkish-İ-insensitive, so "TÜRKİYE", "Türkiye",
"Turkiye" and "türkiye'nin" all contain the folded word "turkiye". In the other scripts the
topics are written for it does what readers of each already take as the same word:
- Arabic and Persian: harakat, Quranic marks and tatweel dropped; one letter for those written
  several ways (أ إ آ ٱ → ا, ة → ه, ى ی → ي, ک → ك, ؤ → و, ئ → ي); Arabic-Indic and Persian
  digits → 0-9; the zero-width non-joiner becomes a space (ایرانی‌ها is ایرانی ها, and
  تل‌آویو meets تل آویو); ، ؛ ؟ ۔ become , ; ? . so that lists and sentences split as in Latin;
- Hebrew: niqqud and cantillation dropped; final letters as their plain forms (ן → נ, so a
  stem `איראן*` also finds איראני); the maqaf becomes a space; gershayim between letters
  dropped (צה"ל, צה״ל and צהל meet); geresh → apostrophe;
- Cyrillic: ё → е, й → и (the breve goes with the other accents);
- bidirectional marks and the zero-width joiner, invisible, are dropped.
Folding is character by character (but for the gershayim), so `fold_with_offsets` can say
which character of the original each folded character came from (explain shows the original).
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
    # Arabic script (Arabic, Persian): one form per letter, as Arabic and Persian search does.
    table.update(
        {
            0x0640: "",  # tatweel, the stretching stroke
            0x0671: "ا",  # alef wasla (أ إ آ lose their hamza and madda as combining marks)
            0x0649: "ي",  # alef maksura
            0x06CC: "ي",  # Persian yeh
            0x06A9: "ك",  # Persian keheh
            0x0629: "ه",  # ta marbuta
            0x060C: ",",  # Arabic comma
            0x061B: ";",  # Arabic semicolon
            0x061F: "?",  # Arabic question mark
            0x06D4: ".",  # Arabic full stop
            0x200C: " ",  # zero-width non-joiner: Persian's break inside a written word
            # Letters that decomposition would also unify, mapped here so that most Arabic,
            # Persian and Russian text needs no decomposition at all (2-3x faster).
            0x0623: "ا",  # alef with hamza above
            0x0625: "ا",  # alef with hamza below
            0x0622: "ا",  # alef with madda
            0x0624: "و",  # waw with hamza
            0x0626: "ي",  # yeh with hamza
            0x06C0: "ه",  # heh with yeh above (Persian ezafe)
            ord("й"): "и",
            ord("Й"): "и",
            ord("ё"): "е",
            ord("Ё"): "е",
        }
    )
    for zero in (0x0660, 0x06F0):  # Arabic-Indic and Persian digits
        table.update({zero + n: str(n) for n in range(10)})
    # Hebrew: final letters as their plain forms, the maqaf as a dash, geresh as apostrophe.
    table.update({ord(f): p for f, p in zip("ךםןףץ", "כמנפצ", strict=True)})
    table[0x05BE] = " "  # maqaf
    table[0x05F3] = "'"  # geresh
    table[0x05F4] = '"'  # gershayim (dropped between letters: see fold)
    # Invisible: the zero-width joiner and the bidirectional marks of right-to-left text.
    for invisible in (
        0x200D,
        0x200E,
        0x200F,
        0x061C,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ):
        table[invisible] = ""
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


_FOLD_MAP = _fold_table()
# The same as a sequence indexed by code point, identity where nothing changes: str.translate
# with a dict pays for a failed lookup on every character that is not folded (most of a
# Persian or Russian text); with a sequence it does not (measured 1.8x faster). Characters past
# its end (other scripts) are left as they are.
_FOLD = [_FOLD_MAP.get(code, chr(code)) for code in range(max(_FOLD_MAP) + 1)]
# Marks dropped after decomposition: Latin combining accents; Hebrew niqqud and cantillation
# (not the maqaf U+05BE, paseq, sof pasuq or nun hafukha, which are punctuation); Arabic
# harakat, hamza and madda above/below (so أ إ آ ؤ ئ become ا ا ا و ي), the superscript alef
# and the Quranic annotation signs.
_COMBINING = re.compile(
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
    "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed]"
)
# Gershayim (folded to '"') between two Hebrew letters marks an acronym: צה"ל is the word צהל.
_GERSHAYIM = re.compile('(?<=[\u05d0-\u05ea])"(?=[\u05d0-\u05ea])')


def fold(text: str) -> str:
    """Lower-case, strip accents, unify Turkish I/İ/ı, apostrophes and dashes, for matching."""
    if text.isascii():
        # The common case for English: only case, hyphens and backticks to unify (C-speed).
        return text.lower().replace("-", " ").replace("`", "'")
    folded = _fold_characters(text).lower()
    if not folded.isascii():
        # Other scripts, unusual accents: full compatibility decomposition, then the marks
        # dropped. Most text of other scripts has nothing to decompose (checked at C speed).
        if not unicodedata.is_normalized("NFKD", folded):
            folded = unicodedata.normalize("NFKD", folded)
            folded = _COMBINING.sub("", folded).translate(_FOLD).lower()
        elif _LEFT_TO_FOLD.search(folded):
            # Marks left to drop (harakat, niqqud), or a character that lower() made and the
            # table folds ("ẞ" → "ß" → "ss"); one search tells whether either is there.
            folded = _fold_characters(_COMBINING.sub("", folded))
        if '"' in folded:
            folded = _GERSHAYIM.sub("", folded)
    return folded


# The characters the table changes, and the scripts in which they are few.
_FOLDABLE = re.compile(
    "[" + "".join(re.escape(chr(c)) for c, v in _FOLD_MAP.items() if v != chr(c)) + "]"
)
_FEW_FOLDABLE = re.compile("[\u0400-\u06ff]")  # Cyrillic, Hebrew, Arabic
_LEFT_TO_FOLD = re.compile(f"{_COMBINING.pattern}|{_FOLDABLE.pattern}")


def _fold_characters(text: str) -> str:
    """text.translate(_FOLD), faster where few characters change: in Cyrillic, Hebrew and
    Arabic text str.translate pays for every character (4-5 us a summary), while replacing
    the few that change costs 1-3 us (bench/score.py). Latin text with accents has many."""
    if not _FEW_FOLDABLE.search(text):
        return text.translate(_FOLD)
    for char in set(_FOLDABLE.findall(text)):
        text = text.replace(char, _FOLD_MAP[ord(char)])
    return text


def fold_with_offsets(text: str) -> tuple[str, list[int] | None]:
    """`fold(text)` and, for each of its characters, the index in `text` it came from, plus
    one more entry, len(text), for spans that end at the end. None when folding character by
    character does not give fold(text) (Greek final sigma): then there is no way back."""
    pieces = [fold(char) for char in text]
    for index, piece in enumerate(pieces):
        if piece == '"':
            # Between two Hebrew letters, marks that fold to nothing aside: an acronym.
            before = next((p for p in reversed(pieces[:index]) if p), "")
            after = next((p for p in pieces[index + 1 :] if p), "")
            if _GERSHAYIM.match(f'{before[-1:]}"{after[:1]}', 1):
                pieces[index] = ""
    folded, whole = "".join(pieces), fold(text)
    if folded != whole:
        return whole, None
    origins = [index for index, piece in enumerate(pieces) for _ in piece]
    return folded, [*origins, len(text)]
