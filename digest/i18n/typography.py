"""Typography by language for article text: the language's quotation marks and, in French, the spaces that
keep « » : ; ! ? on the line of their word (a pure function, applied to plain text before it is escaped).

Only what is unambiguous changes: a pair of straight or English curly double quotes around words becomes the
language's pair, and French punctuation gets its no-break space (narrow before ; ! ?, and inside « », a
normal-width no-break space before :, as the Imprimerie nationale's rules have it). Words that look like
addresses (``https://…?a=1``, ``www.…``) and clock times (``12:30``) are left alone. Applying it twice changes
nothing more.
"""

from __future__ import annotations

import re

from digest.i18n.languages import normalize

NBSP = "\u00a0"
NNBSP = "\u202f"  # narrow no-break space

# (opening, closing, space inside) of each language's primary quotation marks.
QUOTES: dict[str, tuple[str, str, str]] = {
    "en": ("\u201c", "\u201d", ""),
    "de": ("\u201e", "\u201c", ""),
    "fr": ("\u00ab", "\u00bb", NNBSP),
    "es": ("\u00ab", "\u00bb", ""),
    "it": ("\u00ab", "\u00bb", ""),
    "pt-BR": ("\u201c", "\u201d", ""),
}

# A straight pair "…", or an English curly pair “…”, around text that starts and ends with a non-space.
_STRAIGHT = re.compile(r'(?<![\w"])"(?=\S)([^"\n]*?\S)"(?![\w"])')
_CURLY = re.compile(r"\u201c(?=\S)([^\u201c\u201d\u201e\n]*?\S)\u201d")
_URLISH = re.compile(r"\S*(?:://|www\.|@)\S*")
_SPACE = r"[ \t\u00a0\u202f\u2009]"
# French: any space (or none, after a word) before ; ! ? becomes a narrow no-break space, before : a no-break
# space; « and » get a narrow no-break space inside.
_FR_TIGHT = re.compile(rf"(?:{_SPACE}+|(?<=[\w\u00bb)\]]))([;!?]+)(?=\s|$|[\u00bb)\]\"'’.,])")
_FR_COLON = re.compile(rf"(?:{_SPACE}+|(?<=[^\W\d]))(:)(?=\s|$)")
_FR_OPEN = re.compile(rf"\u00ab{_SPACE}*")
_FR_CLOSE = re.compile(rf"{_SPACE}*\u00bb")


def typeset(text: str, language: str) -> str:
    """``text`` with the quotation marks and punctuation spacing of ``language`` (a supported tag)."""
    if not text:
        return text
    tag = normalize(language)
    # Addresses keep every character: cut them out, typeset the rest, put them back.
    pieces = _URLISH.split(text)
    kept = _URLISH.findall(text)
    out = [_typeset_words(piece, tag) for piece in pieces]
    result = out[0]
    for address, piece in zip(kept, out[1:], strict=True):
        result += address + piece
    return result


def _typeset_words(text: str, tag: str) -> str:
    opening, closing, inside = QUOTES[tag]

    def quote(match: re.Match[str]) -> str:
        return f"{opening}{inside}{match.group(1)}{inside}{closing}"

    text = _CURLY.sub(quote, _STRAIGHT.sub(quote, text))
    if tag == "fr":
        text = _FR_OPEN.sub("\u00ab" + NNBSP, text)
        text = _FR_CLOSE.sub(NNBSP + "\u00bb", text)
        text = _FR_TIGHT.sub(lambda m: NNBSP + m.group(1), text)
        text = _FR_COLON.sub(lambda m: NBSP + m.group(1), text)
    return text
