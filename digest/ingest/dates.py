"""Dates as feeds write them, in English or not: "Seg, 12 Fev 2018 10:00:00 -0200", "dim., 11 févr. 2018 14:08".

feedparser reads RFC 822 and ISO 8601 dates in English. Many feeds localize the day and month names, and
feedparser then gives up; rather than lose the article's real date, its day names are dropped and its month
names translated to English before dateutil reads the result.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta

from dateutil import parser as dateparser
from dateutil.tz import tzoffset

_MONTHS: dict[int, tuple[str, ...]] = {
    # Portuguese, French, German, Spanish, Italian, Dutch: full names and usual abbreviations, accents removed.
    1: ("janeiro", "jan", "janvier", "janv", "januar", "janner", "jan", "enero", "ene", "gennaio", "gen",
        "januari"),
    2: ("fevereiro", "fev", "fevrier", "fevr", "fev", "februar", "feb", "febrero", "febbraio", "februari"),
    3: ("marco", "mar", "mars", "marz", "mrz", "maerz", "marzo", "maart", "mrt"),
    4: ("abril", "abr", "avril", "avr", "april", "apr", "aprile", "apr"),
    5: ("maio", "mai", "mai", "mayo", "maggio", "mag", "mei"),
    6: ("junho", "jun", "juin", "juni", "junio", "giugno", "giu"),
    7: ("julho", "jul", "juillet", "juil", "juli", "julio", "luglio", "lug"),
    8: ("agosto", "ago", "aout", "august", "aug", "agosto", "augustus"),
    9: ("setembro", "set", "septembre", "sept", "september", "sep", "septiembre", "settembre"),
    10: ("outubro", "out", "octobre", "oct", "oktober", "okt", "octubre", "ottobre", "ott"),
    11: ("novembro", "nov", "novembre", "november", "noviembre"),
    12: ("dezembro", "dez", "decembre", "dec", "dezember", "diciembre", "dic", "dicembre", "december"),
}
_ENGLISH_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NAMES = {name: _ENGLISH_MONTHS[number - 1] for number, names in _MONTHS.items() for name in names}

# Day names carry nothing the date does not; full names are dropped wherever they are.
_DAYS_FULL = {
    "segunda", "terca", "quarta", "quinta", "sexta", "sabado", "domingo", "feira",
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
    "montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonnabend", "sonntag",
    "lunes", "martes", "miercoles", "jueves", "viernes", "lunedi", "martedi", "mercoledi", "giovedi", "venerdi", "sabato", "domenica",
    "maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag",
}
# Abbreviated day names clash with month names ("mar" is Tuesday in French and March in Portuguese), so they
# are dropped only as the first word, where RFC 822 puts the day.
_DAYS_SHORT = {
    "seg", "ter", "qua", "qui", "sex", "sab", "dom", "lun", "mar", "mer", "jeu", "ven", "sam", "dim",
    "mo", "di", "mi", "do", "fr", "sa", "so", "mie", "jue", "vie", "gio", "mon", "tue", "wed", "thu", "fri",
    "sat", "sun", "ma", "wo", "vr", "za", "zo",
}
_FILLER = {"de", "del", "le", "den", "der", "um", "uhr", "a", "as", "alle", "ore", "om", "el", "du", "of", "the",
           "at", "em", "en", "il", "op"}
_ENGLISH_DAYS = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
_ENGLISH_MONTH_FORMS = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
                        "january", "february", "march", "april", "june", "july", "august", "september",
                        "october", "november", "december"}

# Zone names dateutil does not know.
_ZONES = {
    "MEZ": 3600, "MESZ": 7200, "CET": 3600, "CEST": 7200, "WET": 0, "WEST": 3600, "EET": 7200, "EEST": 10800,
    "BRT": -10800, "BRST": -7200, "HNE": -18000, "HAE": -14400, "EST": -18000, "EDT": -14400, "CST": -21600,
    "CDT": -18000, "MST": -25200, "MDT": -21600, "PST": -28800, "PDT": -25200, "BST": 3600, "IST": 19800,
    "JST": 32400, "AEST": 36000, "AEDT": 39600, "UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
}
_YEAR = re.compile(r"(?<!\d)(19|20)\d\d(?!\d)")
_TZINFOS = {name: tzoffset(name, seconds) for name, seconds in _ZONES.items()}


def parse_date(raw: str) -> datetime | None:
    """An aware UTC datetime from a date string in English or a few European languages; None if unreadable."""
    if not raw or not raw.strip() or len(raw) > 200:
        return None
    text, localized = _translate(raw)
    if not _YEAR.search(text):  # without a year dateutil would fill in this year: a guess, not a date
        return None
    try:
        parsed = dateparser.parse(text, tzinfos=_TZINFOS, dayfirst=localized)
    except (ValueError, OverflowError, TypeError, dateparser.ParserError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        result = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return result if plausible(result) else None


def plausible(when: datetime) -> bool:
    """A "date" decades away is a misreading (a bare number taken for a year), not an article's date."""
    return datetime(1990, 1, 1, tzinfo=UTC) <= when <= datetime.now(UTC) + timedelta(days=366)


def _translate(raw: str) -> tuple[str, bool]:
    """English date text, and whether anything localized was seen (then 11/02 means 11 February)."""
    text = re.sub(r"(\d{1,2})\s*h\s*(\d{2})", r"\1:\2", raw.strip())  # French "14h08", "14 h 08"
    tokens = re.findall(r"[^\s,]+", text)
    keys = [_plain(token).rstrip(".") for token in tokens]
    months = [i for i, k in enumerate(keys) if k in _MONTH_NAMES or k in _ENGLISH_MONTH_FORMS]
    words: list[str] = []
    localized = False
    for index, (token, key) in enumerate(zip(tokens, keys)):
        parts = key.split("-")
        if key and all(p.isalpha() for p in parts):
            if all(p in _DAYS_FULL for p in parts) or (not words and key in _DAYS_SHORT and any(i != index for i in months)):
                localized = localized or key not in _ENGLISH_DAYS
                continue
            if key in _MONTH_NAMES:
                localized = localized or key not in _ENGLISH_MONTH_FORMS
                words.append(_MONTH_NAMES[key])
                continue
            following = tokens[index + 1] if index + 1 < len(tokens) else ""
            if key in _FILLER or (key == "am" and following[:1].isdigit()):  # German "am 11. Februar"
                localized = True
                continue
        words.append(token)
    return " ".join(words), localized


def _plain(token: str) -> str:
    """Lower case without accents: "Févr." → "fevr.", "März" → "marz"."""
    decomposed = unicodedata.normalize("NFKD", token.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))
