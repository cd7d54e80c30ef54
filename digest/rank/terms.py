"""What a story is about, as weighted words: the lemmas of its headline and lede, rare ones weighing most.

Two outlets telling the same event pick different common words ("backs", "approves", "votes for") but cannot
avoid its rare ones: the place, the people, the numbers, the thing that happened (ferry, timetable, landslide).
So every word is reduced to its lemma (``simplemma``: "ferries" and "ferry", "aprobó" and "aprobar" are one
term) and weighted by how rare it is in the language (``wordfreq``: ``ZIPF_COMMON`` minus its Zipf frequency,
so "the" and "new" weigh nothing, "council" about 1, "ferry" 2 and "timetable" or a name the most).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache

import simplemma
import wordfreq

from digest.models import Article

# The languages lemmatized and detected; another language's words are compared as written.
LANGUAGES = ("en", "fr", "de", "es", "pt")
DEFAULT_LANGUAGE = "en"
# Zipf frequency (log10 of occurrences per billion words) at or above which a word weighs nothing: the, new, de,
# und. Below it a word weighs ZIPF_COMMON minus its frequency, up to MAX_WEIGHT: every word rarer than about
# one in a million ("timetable", "landslide") weighs as much as a name wordfreq has never seen. A higher cap let
# shared names outweigh everything else, and the same council deciding something else looked like the same story
# (tests/fixtures/story_clusters.json measures this).
ZIPF_COMMON = 6.0
MAX_WEIGHT = 3.0
# Function words that decide the language of a text without a stated one (the most frequent words of each).
_DETECT_WORDS = 60

# A figure is one term however an outlet writes it: "40,000", "40.000" and "40 000" are 40000; "4.5" and "4,5"
# are 4.5. Figures are matched before words, so their separators do not split them.
_NUMBER = r"\d+(?:[.,](?:\d{3}(?!\d)|\d+)|[\u00a0\u202f ]\d{3}(?!\d))*"
_TOKEN = re.compile(_NUMBER + r"|\w+", re.UNICODE)
_THOUSANDS = re.compile(r"\d{1,3}(?:([.,\u00a0\u202f ])\d{3})(?:\1\d{3})*")
# A figure of two digits or more (a count, a sum, a score) is as telling as a rare word; "2" or "a" is not.
NUMBER_WEIGHT = 4.0

Terms = Mapping[str, float]


def story_text(article: Article) -> str:
    """Headline and lede: what every format carries. Quick Looks stand in only when there is no lede: a
    Newslooks article brings five bullets of its own that the feed version of the same story lacks, and those
    extra words alone would pull the pair apart."""
    return " ".join([article.title or "", article.summary or " ".join(article.quick_looks)])


def base_language(tag: str | None) -> str | None:
    """``en-GB`` -> ``en``; ``None`` for no tag."""
    if not tag:
        return None
    return tag.replace("_", "-").split("-")[0].strip().lower() or None


@cache
def _function_words() -> dict[str, frozenset[str]]:
    return {lang: frozenset(wordfreq.top_n_list(lang, _DETECT_WORDS)) for lang in LANGUAGES}


def detect_language(words: Sequence[str]) -> str:
    """The supported language whose most frequent words the text uses most; ``DEFAULT_LANGUAGE`` on a tie at
    zero. Cheap on purpose (set look-ups): it runs for every article without a stated language."""
    best, best_hits = DEFAULT_LANGUAGE, 0
    for lang, common in _function_words().items():
        hits = sum(1 for w in words if w in common)
        if hits > best_hits:
            best, best_hits = lang, hits
    return best


@lru_cache(maxsize=1)
def _weighed_languages() -> frozenset[str]:
    return frozenset(wordfreq.available_languages())


def language_of(article: Article, words: Sequence[str]) -> str:
    """The article's stated language (``language``, set by ingest where a source states it; older stored
    articles have none) if wordfreq can weigh its words, else the detected one."""
    stated = base_language(getattr(article, "language", None))
    return stated if stated and stated in _weighed_languages() else detect_language(words)


@lru_cache(maxsize=1 << 18)
def term(word: str, lang: str) -> tuple[str, float]:
    """The lemma of a casefolded ``word`` and its weight in ``lang``."""
    if word[0].isdigit():
        return word, NUMBER_WEIGHT if len(word) > 1 else 1.0
    lemma = word
    if lang in LANGUAGES:
        try:
            lemma = simplemma.lemmatize(word, lang).casefold()
        except ValueError:  # simplemma has no data for the language after all
            lemma = word
    zipf = max(wordfreq.zipf_frequency(lemma, lang), wordfreq.zipf_frequency(word, lang))
    return lemma, min(MAX_WEIGHT, max(0.0, ZIPF_COMMON - zipf))


def _figure(token: str) -> str:
    if _THOUSANDS.fullmatch(token):
        return re.sub(r"\D", "", token)
    return re.sub(r"[,\u00a0\u202f ]", ".", token)


def words_of(text: str) -> list[str]:
    """Casefolded words and normalized figures, in text order."""
    tokens = _TOKEN.findall(unicodedata.normalize("NFC", text).casefold())
    return [_figure(t) if t[0].isdigit() else t for t in tokens]


def terms_of_text(text: str, lang: str | None = None) -> dict[str, float]:
    """Lemma -> weight for ``text`` in ``lang`` (detected when not given or not one wordfreq knows); words that
    weigh nothing (and single letters) are left out."""
    words = words_of(text)
    if not lang or lang not in _weighed_languages():
        lang = detect_language(words)
    out: dict[str, float] = {}
    for word in words:
        if len(word) < 2 and not word[0].isdigit():
            continue
        lemma, weight = term(word, lang)
        if weight > 0.0:
            out[lemma] = weight
    return out


def terms(article: Article) -> dict[str, float]:
    text = story_text(article)
    return terms_of_text(text, language_of(article, words_of(text)))


def similarity(a: Terms, b: Terms) -> float:
    """Weighted Jaccard: the weight of the terms both share over the weight of all their terms (0..1)."""
    if not a or not b:
        return 0.0
    if len(a) > len(b):
        a, b = b, a
    shared = sum(min(w, b[t]) for t, w in a.items() if t in b)
    total = sum(a.values()) + sum(b.values()) - shared
    return shared / total if total > 0 else 0.0
