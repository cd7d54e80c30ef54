"""Quick Looks for articles that come without them: up to five short bullets taken from the text itself.

Extractive on purpose: a bullet is always a sentence the outlet wrote, never a paraphrase, so a digest cannot put
words in a newsroom's mouth. The lede comes first (news is written top-down); the other bullets are the
sentences that share most words with the rest of the story, shown in the order the story tells them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

from digest.ingest.clean import is_junk_line, squash

MAX_BULLETS = 5
MIN_WORDS = 5
MAX_WORDS = 30
MAX_CHARS = 240

# Words before a full stop that do not end a sentence.
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sen", "rep", "gov", "gen", "lt", "col", "sgt", "capt", "st", "jr", "sr",
    "inc", "ltd", "co", "corp", "vs", "etc", "no", "nos", "vol", "fig", "approx", "dept", "univ", "ave", "mt",
    "jan", "feb", "mar", "apr", "aug", "sept", "sep", "oct", "nov", "dec", "u.s", "u.k", "u.n", "e.g", "i.e",
    "a.m", "p.m", "d.c", "z.b", "bzw", "ca", "nr", "av", "sra", "mme", "mlle", "m",
}
_BOUNDARY = re.compile(r"([.!?…]+[\"'”’»“)\]]*)\s+(?=[\"'“‘«„‚(\[]?[A-Z0-9À-ÖØ-Þ])")
# "ANCHORAGE, Alaska — " or "PORT ALDER – " opening a story: the dateline, not part of the sentence.
_DATELINE = re.compile(r"^[A-ZÀ-Þ][A-ZÀ-Þ .'’-]+(?:, [A-Z][\w. ]{1,30})?\s+[—–-]{1,2}\s+(?=\S)")
_WORD = re.compile(r"[^\W\d_]{4,}", re.UNICODE)
_STOPWORDS = {
    "that", "this", "with", "from", "have", "were", "they", "their", "them", "been", "will", "would", "said",
    "says", "about", "which", "when", "what", "there", "than", "into", "also", "more", "some", "such", "while",
    "after", "before", "over", "only", "other", "could", "should", "where", "these", "those", "being", "then",
    "just", "most", "very", "does", "each", "even", "much", "many", "under", "between", "since", "still",
}


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph; abbreviations and initials (``U.S.``, ``J. Mansour``) do not end one."""
    text = squash(text)
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end(1)
        before = text[start:match.start(1)].rsplit(" ", 1)[-1].lower().strip("\"'“‘«([")
        if match.group(1).startswith(".") and (len(before) == 1 or before in _ABBREVIATIONS):
            continue
        sentences.append(text[start:end].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def is_clean_sentence(sentence: str) -> bool:
    """Short enough for a bullet, a whole sentence, and not the site talking."""
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or len(sentence) > MAX_CHARS:
        return False
    first = sentence.lstrip("\"'“‘«„‚(")[:1]
    if not first or not (first.isupper() or first.isdigit()):
        return False
    if sentence.rstrip().endswith((":", ",", ";", "?")) or is_junk_line(sentence):
        return False
    return _quotes_balanced(sentence)


def derive_quick_looks(title: str, summary: str | None, paragraphs: Iterable[str],
                       limit: int = MAX_BULLETS) -> list[str]:
    """At least one bullet, at most ``limit``: as many clean sentences as the text supports."""
    texts = [t for t in [summary or "", *paragraphs] if t and t.strip()]
    sentences: list[str] = []
    seen = {_key(title)}
    for text in texts:
        for sentence in split_sentences(text):
            sentence = _DATELINE.sub("", sentence)
            key = _key(sentence)
            if key and key not in seen:
                seen.add(key)
                sentences.append(sentence)
    clean = [s for s in sentences if is_clean_sentence(s)]
    if not clean:
        return [_fallback(sentences, title)]
    if len(clean) <= limit:
        return clean
    return _pick(clean, title, limit)


def _pick(sentences: list[str], title: str, limit: int) -> list[str]:
    frequency = Counter(w for s in sentences for w in _content_words(s))
    title_words = set(_content_words(title))

    def score(index: int) -> float:
        words = _content_words(sentences[index])
        if not words:
            return 0.0
        centrality = sum(frequency[w] - 1 for w in set(words)) / math.sqrt(len(words))
        return centrality + 2.0 * len(title_words & set(words)) + (100.0 if index == 0 else 0.0)

    chosen = sorted(sorted(range(len(sentences)), key=score, reverse=True)[:limit])
    return [sentences[i] for i in chosen]


def _fallback(sentences: list[str], title: str) -> str:
    """No clean sentence: the first one, cut to bullet length, or the headline when there is no text at all."""
    text = sentences[0] if sentences else squash(title)
    words = text.split()
    if len(words) > MAX_WORDS or len(text) > MAX_CHARS:
        cut = " ".join(words[:MAX_WORDS])[:MAX_CHARS].rsplit(" ", 1)[0]
        return cut.rstrip(",;:") + "…"
    return text


def _content_words(text: str) -> list[str]:
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOPWORDS]


def _key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _quotes_balanced(sentence: str) -> bool:
    # A bullet that opens a quotation it does not close reads as a fragment. “ opens in English (closed by ”)
    # and closes in German („…“); French quotes with «…» (German also »…«).
    return (sentence.count("“") == sentence.count("”") + sentence.count("„")
            and sentence.count("«") == sentence.count("»") and sentence.count('"') % 2 == 0)
