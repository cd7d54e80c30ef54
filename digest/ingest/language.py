"""An article's language: the BCP 47 primary tag ("en", "fr", "de", "pt", "es", "it"), or None when unknown.

A source that says which language it is in is believed: a feed's ``language`` (``fr-FR``, ``pt-br``), the JSON
field, Newslooks (always English). Only an article that says nothing is detected from its text.

Detection uses lingua (``lingua-language-detector``), restricted to the six languages our newsrooms publish in
and in its low-accuracy mode. Measured here before choosing (one process, detect one French sentence):

- lingua, low accuracy, six languages: 35 MB peak for the whole process (a bare interpreter is 11 MB), 0.1 s;
  the wheel is large on disk (96 MB: it ships all 75 languages' models) but loads only the six asked for.
  High-accuracy mode peaks at 174 MB and takes 1.3 s, and only helps on a few words, while we always have a
  headline and a paragraph or more.
- simplemma's ``langdetect``: 19 MB on disk but a 396 MB peak and 3.4 s (it loads six lemma dictionaries).
- py3langid: 4.5 MB on disk, a 136 MB peak and 0.7 s (numpy and its model), and it guesses among 97 languages.

So lingua: cheapest where it matters (memory and time of every ingest), accurate on short text, maintained.
Restricted to six languages it cannot answer "Dutch"; a Dutch article is labelled with its nearest of the six.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lingua import LanguageDetector

LANGUAGES = ("en", "fr", "de", "pt", "es", "it")
# Below this many letters a guess is a coin toss ("Kubernetes 1.2 released" reads as English or Portuguese).
MIN_LETTERS = 40
MIN_CONFIDENCE = 0.5
_TAG = re.compile(r"^([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*$")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def primary_tag(tag: str | None) -> str | None:
    """``fr-FR`` → ``fr``, ``pt_BR`` → ``pt``, ``EN`` → ``en``; None for anything that is not a language tag."""
    if not tag:
        return None
    match = _TAG.match(tag.strip())
    return match.group(1).lower() if match else None


def detect_language(text: str) -> str | None:
    """The language of ``text`` among `LANGUAGES`, or None when the text is too short or the guess unsure."""
    if len(_LETTER.findall(text)) < MIN_LETTERS:
        return None
    values = _detector().compute_language_confidence_values(text)
    if not values or values[0].value < MIN_CONFIDENCE:
        return None
    return str(values[0].language.iso_code_639_1.name).lower()


@cache
def _detector() -> LanguageDetector:
    # Built on first use: ingesting only Newslooks files or feeds that declare their language never loads it.
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = [getattr(IsoCode639_1, code.upper()) for code in LANGUAGES]
    return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_low_accuracy_mode().build()
