"""Dates and times in the reader's language and time zone, through Babel's CLDR data (pure functions).

Every function takes a supported language tag (see ``languages``); English uses the British forms the
templates always had ("Saturday, 28 November 2026", "Sat 28 Nov", "06:30"). A zone is named the way readers
know it: its abbreviation where the language has one ("MEZ", "BRT", "CET"), else its city ("São Paulo"),
never a bare offset such as "-03".
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache

from babel import Locale
from babel.dates import format_date, format_skeleton, format_time, get_timezone_location, get_timezone_name

from digest.i18n.languages import normalize

# Babel's plain "en" is American English (month first, 12-hour clock); the newsroom's English is British.
_DATE_LOCALES = {"en": "en_GB"}
# British English knows CET and BST but not the American zones' EST or PST, which English readers know as well.
_MORE_ABBREVIATIONS = {"en": (Locale.parse("en_US"),)}
_ABBREVIATION = re.compile(r"[A-Za-z]{2,5}")


@lru_cache(maxsize=32)
def date_locale(language: str) -> Locale:
    tag = normalize(language)
    return Locale.parse(_DATE_LOCALES.get(tag, tag.replace("-", "_")))


def long_date(day: date, language: str) -> str:
    """The edition's date in full: "Samstag, 28. November 2026", "sábado, 28 de novembro de 2026"."""
    return format_date(day, "full", locale=date_locale(language))


def short_date(day: date, language: str) -> str:
    """The subject line's date: "Sat 28 Nov", "Sa., 28. Nov.", "sam. 28 nov."."""
    return format_skeleton("MMMEd", day, locale=date_locale(language))


def day_month(day: date, language: str) -> str:
    """Day and month without the weekday: "28 Nov", "28. Nov.", "28 de nov."."""
    return format_skeleton("MMMd", day, locale=date_locale(language))


def day_month_year(day: date, language: str) -> str:
    """Day, month and year: "3 Mar 2030", "3. März 2030", "3 de mar. de 2030"."""
    return format_skeleton("yMMMd", day, locale=date_locale(language))


def day_label(day: date, edition_date: date, language: str) -> str:
    """A byline's day: "3 Dec", with the year ("3 Dec 2024") when the day is more than a year before the
    edition, so an old article does not pass for this week's."""
    if (edition_date - day).days > 365:
        return day_month_year(day, language)
    return day_month(day, language)


def clock(moment: datetime, language: str) -> str:
    """The time of day, the language's way ("06:30"; Spanish writes "6:30")."""
    return format_time(moment, "short", locale=date_locale(language))


def zone_name(zone: tzinfo, language: str, at: datetime | None = None) -> str:
    """The zone's common name in ``language`` at the moment ``at`` (summer or winter time): its abbreviation
    where CLDR has one for that language ("MEZ", "CEST", "BRT"), else its city ("São Paulo", "Berlim")."""
    moment = (at or datetime.now(UTC)).astimezone(zone)
    locale = date_locale(language)
    for candidate in (locale, *_MORE_ABBREVIATIONS.get(normalize(language), ())):
        short = get_timezone_name(moment, "short", locale=candidate)
        if _ABBREVIATION.fullmatch(short):
            return short
    return get_timezone_location(zone, locale=locale, return_city=True)


def byline_time(published: datetime | None, zone: tzinfo, edition_date: date, language: str) -> str:
    """When an article appeared, in the reader's zone: "06:30 MEZ" on the edition's day, "27. Nov., 18:05 MEZ"
    the days before (with the year when over a year before); empty for an article without a time."""
    if published is None:
        return ""
    local = published.astimezone(zone)
    when = f"{clock(local, language)} {zone_name(zone, language, local)}"
    if local.date() == edition_date:
        return when
    return f"{day_label(local.date(), edition_date, language)}, {when}"


def iso_datetime(moment: datetime) -> str:
    """For ``<time datetime=…>``: machine-readable whatever the language."""
    return moment.isoformat()
