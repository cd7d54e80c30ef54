"""Quick Looks for articles that come without them: two to five sentences of the story itself, or none.

Extractive on purpose: a bullet is always a whole sentence the outlet wrote, never a paraphrase or a cut, so a
digest cannot put words in a newsroom's mouth. Which sentences:

- from the body, never the lede (the card shows the lede already) nor one that repeats it or the headline;
- only statements that stand on their own: not the site talking (tip-offs, social handles, app and newsletter
  promotions, "Continue reading", live-blog time stamps), not a question or an exclamation, not one that starts
  with a pronoun or connector and so means nothing out of context ("He said", "But", "Il", "Er"), nor one whose
  speaker is a bare "he said", never a quotation opened and not closed; a live blog's none at all;
- of those, the ones that carry most information: rare words (by `wordfreq` frequencies in the article's
  language), names, numbers, words of the headline and lede, and an early place in the story (news is written
  top-down); shown in the story's order, leaving out one that mostly repeats a sentence already chosen.

Fewer than two such sentences, and the article gets no Quick Looks at all: the card then shows the lede and a
read-on link, which reads better than one bullet that says the lede again.

Sentences are split by `sentencex` (Wikimedia's rule-based segmenter: English, French, German, Portuguese,
Spanish and Italian abbreviations and quotations), plus two repairs: a "sentence" starting in lower case
continues the one before it ("le 3 janv. fut calme"), and so does one after a title or initial ("M. Dupont").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

import sentencex
import wordfreq

from digest.ingest.clean import is_junk_line, squash
from digest.ingest.liveblog import is_live_title

MAX_BULLETS = 5
MIN_BULLETS = 2  # fewer good sentences than this: no Quick Looks at all
MIN_WORDS = 6
MAX_WORDS = 40
MAX_CHARS = 280
# Past the first two, a sentence scoring under this share of the best one is filler next to it.
RELATIVE_FLOOR = 0.3
# Under this score a sentence says too little to be a bullet at all ("The meeting lasted an hour.").
ABSOLUTE_FLOOR = 0.4
# Share of a sentence's content words found in the lede (or a chosen bullet) above which it only repeats it.
REPEAT_SHARE = 0.6

# Titles and initials before a full stop that do not end a sentence, in the six languages (lower case, no dot).
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sen", "rep", "gov", "gen", "lt", "col", "sgt", "capt", "st", "jr", "sr",
    "inc", "ltd", "co", "corp", "vs", "no", "nos", "vol", "fig", "approx", "dept", "univ", "ave", "mt", "jan",
    "feb", "mar", "apr", "aug", "sept", "sep", "oct", "nov", "dec", "m", "mm", "mme", "mmes", "mlle", "mgr",
    "me", "janv", "févr", "avr", "juil", "déc", "hr", "hrn", "fr", "frl", "nr", "bzw", "ca", "sra", "srta",
    "dra", "profa", "av", "sig", "sigg", "dott", "ing", "avv", "on",
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# "ANCHORAGE, Alaska — " or "PORT ALDER – " opening a story: the dateline, not part of the sentence.
_DATELINE = re.compile(r"^[A-ZÀ-Þ][A-ZÀ-Þ .'’-]+(?:, [A-Z][\w. ]{1,30})?\s+[—–-]{1,2}\s+(?=\S)")
_OPENING = "\"'“‘«„‚([¿¡ "
_DANGLING_OPENER = re.compile(r"\s([“«„‚‘\"(\[]+)\s*$")
# A statement: exclamations in news copy are sarcasm or quoted cheering ("… for The Machinist!").
_ENDS_SENTENCE = re.compile(r"\.[\"'”’»“)\]]*$")

# The site talking, in the languages our feeds come in. A bullet matching any of these is left out.
BOILERPLATE = re.compile(
    r"(\btip-?offs?\b|\btweet (me|us)\b|\bfollow (me|us|him|her)\b|\bemail (me|us|him|her|[A-Z][a-z]+) (at|with|on)\b|"
    r"@\w{2,}|\bpic\.twitter\.com|https?://|\bwww\.|\b[\w.-]+\.(com|org|net|co\.uk|fr|de)/|"
    r"\b(free|our) (news )?(app|newsletter|podcast|email briefing)|\bmorning (email|briefing)\b|"
    r"\bsign up\b|\bsubscribe\b|\bnewsletter\b|\bpodcast\b|\bdownload (the|our)\b|\bclick here\b|"
    r"\bcontinue reading\b|\bread (more|the full)\b|\bfull story\b|\blive updates?\b|\bupdated at\b|"
    r"\blast modified\b|\bphotograph:|\bcomposite:|\billustration:|\ball rights reserved\b|\bcopyright\b|"
    r"\babonnez-vous\b|\binscrivez-vous\b|\blire (aussi|la suite)\b|\bmis à jour\b|\bnotre application\b|"
    r"\bjetzt abonnieren\b|\bmehr (dazu|zum thema)\b|\baktualisiert\b|\bweiterlesen\b|\bunsere app\b|"
    r"\bassine\b|\bassinantes?\b|\bleia (mais|também)\b|\batualizad[oa]\b|\bbaixe o\b|"
    r"\bsuscríbete\b|\bleer más\b|\bactualizad[oa]\b|\bdescarga (la|nuestra)\b|\biscriviti\b|\bleggi anche\b|"
    r"\s\|\s|\[\?\])", re.IGNORECASE)
# A live blog's clock: "10.32am GMT", "Updated 14:05 BST", "10h32" opening a sentence.
TIME_STAMP = re.compile(
    r"(^\W*\d{1,2}[.:h]\d{2}\b|\b\d{1,2}[.:]\d{2}\s?(am|pm)?\s?(gmt|bst|utc|cet|cest|edt|est|pdt|pst|et|pt)\b|"
    r"^\W*\d{1,2}[.:]?\d{0,2}\s?(am|pm)\b)", re.IGNORECASE)
# "Warning: ...", "More: ...", "Clockwatch: ...": a label, not a sentence.
_LABEL = re.compile(r"^[\w’'-]+( [\w’'-]+)?\s?:\s")

# First words that point back at something the reader of one bullet has not seen: pronouns, demonstratives and
# connectors. Articles are not here ("Das Unternehmen", "Le conseil"); a sentence whose subject is "Das" alone
# still passes, which is the price of not parsing German.
CONTEXT_OPENERS: dict[str, frozenset[str]] = {
    "en": frozenset({
        "he", "she", "it", "they", "we", "i", "you", "his", "her", "its", "their", "our", "my", "your",
        "this", "that", "these", "those", "there", "here", "but", "and", "or", "so", "yet", "also", "however",
        "meanwhile", "still", "then", "thus", "hence", "therefore", "instead", "indeed", "moreover",
        "furthermore", "nevertheless", "nonetheless", "otherwise", "besides", "anyway", "such", "both",
        "another", "others", "latter", "former", "him", "them", "us", "none", "either", "neither", "later",
        "afterwards", "which", "who", "whom", "whose", "what", "ok", "okay", "well", "yes",
    }),
    "fr": frozenset({
        "il", "elle", "ils", "elles", "on", "nous", "je", "vous", "tu", "lui", "leur", "leurs", "son", "sa",
        "ses", "ce", "cela", "ça", "ceci", "ces", "cette", "cet", "celui", "celle", "ceux", "celles", "mais",
        "et", "ou", "donc", "or", "car", "puis", "ensuite", "aussi", "pourtant", "cependant", "toutefois",
        "néanmoins", "ainsi", "alors", "enfin", "là", "y", "lequel", "laquelle", "dont", "qui",
        "quand", "lorsque",
    }),
    "de": frozenset({
        "er", "sie", "es", "wir", "ich", "ihr", "du", "ihm", "ihn", "ihnen", "sein", "seine", "seiner",
        "seinen", "seinem", "ihre", "ihrer", "ihren", "ihrem", "dies", "diese", "dieser", "dieses", "diesen",
        "diesem", "damit", "dabei", "dazu", "daher", "deshalb", "darum", "deswegen", "dort", "hier", "da",
        "aber", "und", "oder", "doch", "jedoch", "allerdings", "außerdem", "zudem", "auch", "so", "dann",
        "denn", "trotzdem", "dennoch", "man", "jene", "jener", "welche", "welcher", "zuvor", "danach",
        "anschließend",
    }),
    "pt": frozenset({
        "ele", "ela", "eles", "elas", "nós", "eu", "você", "vocês", "seu", "sua", "seus", "suas", "dele",
        "dela", "deles", "delas", "isso", "isto", "aquilo", "este", "esta", "estes", "estas", "esse", "essa",
        "esses", "essas", "aquele", "aquela", "mas", "e", "ou", "porém", "contudo", "entretanto", "todavia",
        "também", "assim", "então", "lá", "aí", "ali", "depois", "antes", "qual", "quais", "quando",
    }),
    "es": frozenset({
        "él", "ella", "ellos", "ellas", "nosotros", "yo", "usted", "ustedes", "tú", "su", "sus", "esto",
        "eso", "aquello", "este", "esta", "estos", "estas", "ese", "esa", "esos", "esas", "aquel", "aquella",
        "pero", "y", "e", "o", "u", "también", "además", "así", "entonces", "allí", "ahí", "luego", "después",
        "antes", "aunque", "ello", "cual", "cuales", "cuando",
    }),
    "it": frozenset({
        "lui", "lei", "loro", "noi", "io", "voi", "tu", "suo", "sua", "suoi", "sue", "questo", "questa",
        "questi", "queste", "quello", "quella", "quelli", "quelle", "ma", "e", "o", "però", "tuttavia",
        "inoltre", "anche", "così", "quindi", "allora", "poi", "dopo", "prima", "cui", "quando",
    }),
}
# Two-word connectors ("en revanche", "sin embargo"), and elided ones as words ("c’est" is "c est").
_TWO_WORD_OPENERS = frozenset({
    "en revanche", "de plus", "par ailleurs", "au contraire", "du coup", "d ailleurs", "c est", "s il",
    "qu il", "no entanto", "além disso", "por isso", "sin embargo", "por eso", "por ello", "no obstante",
    "in addition", "as well", "even so", "for example", "for instance", "in fact", "of course", "in contrast",
})
# Subject pronouns that, as the subject after an opening clause and before anyone is named ("Frightened, he
# alerted his superiors"), leave the reader asking who.
_SUBJECT_PRONOUNS = frozenset({
    "he", "she", "they", "we", "i", "il", "elle", "ils", "elles", "je", "nous", "er", "sie", "ich", "wir",
    "ele", "ela", "eles", "elas", "eu", "nós", "él", "ella", "ellos", "ellas", "yo", "nosotros", "lui", "lei",
    "loro", "io", "noi",
})
# Personal pronouns that, right after a quotation, leave its speaker unnamed ("…,” he said.").
_SPEAKER_PRONOUNS = frozenset({
    "he", "she", "they", "il", "elle", "ils", "elles", "er", "sie", "ele", "ela", "eles", "elas", "él",
    "ella", "ellos", "ellas", "lui", "lei", "loro",
})
# A quotation's end as speech ends, “…,” or « … », and the attribution's first words after it.
_AFTER_QUOTE = re.compile(r"(?:[,.!…]\s?[”»“\"]|[”»“\"]\s?,)\s*((?:[^\W\d_]+[\s-]+){0,2}[^\W\d_]+)")
# The first capitalized word after the first one: someone or something named.
_NAMED = re.compile(r"(?<=[^\W\d_])\W+(?!I\b)[A-ZÀ-Þ]")
_FIRST_PERSON = re.compile(r"(?:^|(\S*)\s)I\b(?![.’'-])")
# A pronoun right after an opening clause's comma: "Frightened but calm, he alerted his superiors".
_CLAUSE_PRONOUN = re.compile(r",\s+([^\W\d_]+)\b")
_QUOTATION = re.compile(r"“[^”„]*[”“]|„[^“]*“|«[^»]*»|\"[^\"]*\"")
# Pointing back in the first words: "One of those scientists", "The latter".
_BACK_REFERENCES = frozenset({
    "those", "these", "latter", "former", "such", "ces", "celles", "ceux", "diese", "dieser", "jene", "esses",
    "essas", "estos", "esos", "estas", "esas", "questi", "quelli",
})


def split_sentences(text: str, language: str | None = None) -> list[str]:
    """Sentences of a paragraph, whitespace squashed; titles and initials (``U.S.``, ``M. Dupont``) do not
    end one."""
    text = squash(text)
    if not text:
        return []
    spans: list[list[int]] = []
    at = 0
    for segment in sentencex.segment(language or "en", text):
        start, end = at, at + len(segment)
        at = end
        # sentencex reads a “ after a full stop as closing the sentence (as in German „…“); after a space it
        # opens the next one.
        dangling = _DANGLING_OPENER.search(segment)
        if dangling and dangling.start() > 0:
            end = start + dangling.start(1)
            segment = segment[:dangling.start(1)]
        if spans and spans[-1][1] < start:
            start = spans[-1][1]
        if not segment.strip():
            continue
        if spans and _continues(text[spans[-1][0]:spans[-1][1]], segment):
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return [text[start:end].strip() for start, end in spans]


def derive_quick_looks(title: str, summary: str | None, paragraphs: Iterable[str],
                       limit: int = MAX_BULLETS, language: str | None = None) -> list[str]:
    """Two to ``limit`` whole sentences of the body, in its order; none when it has fewer good ones."""
    if is_live_title(title):  # a live blog's sentences are moments of a match or a night, not the story
        return []
    word_list = _word_list_language(language)
    context = _stems(f"{title} {summary or ''}")
    repeats = [_stems(t) for t in (title, summary or "") if t]
    candidates: list[_Candidate] = []
    seen: set[str] = set()
    index = 0
    for paragraph in paragraphs:
        for raw in split_sentences(paragraph, language):
            sentence = _DATELINE.sub("", raw)
            index += 1
            key = " ".join(_WORD.findall(sentence.lower()))
            if not key or key in seen or not is_clean_sentence(sentence, language):
                continue
            seen.add(key)
            stems = _stems(sentence)
            if _repeats(stems, repeats) or (summary and squash(sentence) in squash(summary)):
                continue
            candidates.append(_Candidate(sentence, index, stems, _score(sentence, index, stems, context,
                                                                         word_list)))
    chosen = _choose(candidates, limit)
    return [c.text for c in sorted(chosen, key=lambda c: c.index)] if len(chosen) >= MIN_BULLETS else []


def is_clean_sentence(sentence: str, language: str | None = None) -> bool:
    """A whole sentence that stands on its own as a bullet, and not the site talking."""
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or len(sentence) > MAX_CHARS:
        return False
    first = sentence.lstrip(_OPENING)[:1]
    if not first or not (first.isupper() or first.isdigit()):
        return False
    if (not _ENDS_SENTENCE.search(sentence) or "?" in sentence or "¿" in sentence or "!" in sentence
            or "…" in sentence or "..." in sentence):
        return False
    if (is_junk_line(sentence) or BOILERPLATE.search(sentence) or TIME_STAMP.search(sentence)
            or _LABEL.match(sentence)):
        return False
    return _quotes_balanced(sentence) and not _needs_context(sentence, language)


@dataclass
class _Candidate:
    text: str
    index: int
    stems: set[str]
    score: float


def _choose(candidates: list[_Candidate], limit: int) -> list[_Candidate]:
    if not candidates:
        return []
    best = max(c.score for c in candidates)
    chosen: list[_Candidate] = []
    for candidate in sorted(candidates, key=lambda c: (-c.score, c.index)):
        if len(chosen) == limit or candidate.score < ABSOLUTE_FLOOR or (
                len(chosen) >= MIN_BULLETS and candidate.score < RELATIVE_FLOOR * best):
            break
        if not _repeats(candidate.stems, [c.stems for c in chosen]):
            chosen.append(candidate)
    return chosen


def _score(sentence: str, index: int, stems: set[str], context: set[str], word_list: str | None) -> float:
    words = _WORD.findall(sentence)
    information = sum(_rarity(w, word_list) for w in {w.lower() for w in words})
    information /= math.sqrt(len(words)) if words else 1.0
    names = sum(1 for w in words[1:] if w[:1].isupper() and not w.isupper())
    numbers = len(re.findall(r"\d+(?:[.,]\d+)*", sentence))
    on_topic = len(stems & context)
    score = information + 0.4 * min(names, 4) + 0.4 * min(numbers, 3) + 0.6 * min(on_topic, 5)
    return score / (1.0 + 0.05 * index)


def _rarity(word: str, language: str | None) -> float:
    # Zipf 6.5 and above ("the", "und") carries nothing, zipf 3 and rarer ("biathlon", a surname) carries most.
    # Without a word list for the language, every word of four letters or more counts as somewhat informative.
    if len(word) < 2:
        return 0.0
    if language is None:
        return 0.5 if len(word) >= 4 else 0.0
    return max(0.0, min(1.0, (6.5 - _zipf(word, language)) / 3.5))


@lru_cache(maxsize=65536)
def _zipf(word: str, language: str) -> float:
    return float(wordfreq.zipf_frequency(word, language, wordlist="small"))


@cache
def _word_list_language(language: str | None) -> str | None:
    """The language itself when wordfreq has a word list for it, else None."""
    return language if language and language in wordfreq.available_languages("small") else None


def _stems(text: str) -> set[str]:
    # Five-letter prefixes: a poor man's stemmer that matches "budget"/"budgets" and "approved"/"approval"
    # across the six languages without loading a lemmatizer.
    return {w.lower()[:5] for w in _WORD.findall(text) if len(w) >= 4}


def _repeats(stems: set[str], others: list[set[str]]) -> bool:
    if not stems:
        return True
    return any(len(stems & other) / len(stems) >= REPEAT_SHARE for other in others if other)


def _needs_context(sentence: str, language: str | None) -> bool:
    words = [w.lower() for w in _WORD.findall(sentence.lstrip(_OPENING)[:60])]
    if not words:
        return True
    openers = CONTEXT_OPENERS.get(language or "", None)
    if openers is None:
        openers = frozenset().union(*CONTEXT_OPENERS.values())
    quoted = sentence[:1] in _OPENING
    # Inside a quotation, "We" and "But" are the speaker's: the attribution after it names who speaks.
    if not quoted and (words[0] in openers or " ".join(words[:2]) in _TWO_WORD_OPENERS):
        return True
    if _BACK_REFERENCES & set(words[:3]):
        return True
    if sentence[:1] in "“«„\"" and sentence.rstrip(".")[-1:] in "”»“\"":
        return True  # a quotation and nothing else: whose words they are is in another sentence
    for match in _AFTER_QUOTE.finditer(sentence):
        if _SPEAKER_PRONOUNS & set(_WORD.findall(match.group(1).lower())):
            return True
    unquoted = _QUOTATION.sub(" ", sentence)
    named = _NAMED.search(unquoted, 1)
    before_name = unquoted[:named.start()] if named else unquoted
    for match in _FIRST_PERSON.finditer(unquoted):
        before = match.group(1) or ""
        first = not unquoted[:match.start()].strip(_OPENING)
        # "World War I" is a name, not the writer; "As I sit" is the writer.
        if first or not (before[:1].isupper() and before[-1:].isalpha()):
            return True  # the writer speaking, outside any quotation: "As I sit in the kitchen"
    return any(m.group(1) in _SUBJECT_PRONOUNS for m in _CLAUSE_PRONOUN.finditer(before_name))


def _continues(previous: str, segment: str) -> bool:
    """Whether a segment sentencex split off is really the rest of the sentence before it."""
    first = segment.lstrip().lstrip(_OPENING)[:1]
    if first and first.islower():
        return True
    last = previous.rstrip().rsplit(" ", 1)[-1]
    if not last.endswith("."):
        return False
    word = last.rstrip(".").lstrip(_OPENING)
    return (len(word) == 1 and word.isupper()) or word.lower() in _ABBREVIATIONS


def _quotes_balanced(sentence: str) -> bool:
    # A bullet that opens a quotation it does not close reads as a fragment. “ opens in English (closed by ”)
    # and closes in German („…“); French quotes with «…» (German also »…«).
    return (sentence.count("“") == sentence.count("”") + sentence.count("„")
            and sentence.count("«") == sentence.count("»") and sentence.count('"') % 2 == 0
            and sentence.count("(") == sentence.count(")"))
