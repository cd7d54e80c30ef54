"""The pure language functions: tags, dates and times through Babel per language, typography per language."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from digest.i18n import dates, languages
from digest.i18n.typography import NBSP, NNBSP, typeset

SATURDAY = date(2026, 11, 28)
MORNING_UTC = datetime(2026, 11, 28, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize(("tag", "expected"), [
    ("en", "en"), ("EN-gb", "en"), ("de-AT", "de"), ("pt_br", "pt-BR"), ("PT-BR", "pt-BR"), ("fr-CA", "fr"),
    ("es-419", "es"), ("it", "it"), (" de ", "de"),
])
def test_tags_normalize_to_the_supported_one(tag: str, expected: str) -> None:
    assert languages.normalize(tag) == expected


@pytest.mark.parametrize("tag", ["pt", "pt-PT", "nl", "xx", "", "de_DE_x_y!", "english"])
def test_unknown_tags_are_refused_with_the_supported_list(tag: str) -> None:
    with pytest.raises(languages.UnknownLanguage) as info:
        languages.normalize(tag)
    assert "en, de, fr, es, pt-BR, it" in str(info.value)


def test_the_reader_s_language_wins_over_the_list_s_and_the_theme_s() -> None:
    assert languages.effective_language("fr", "de", "es") == "fr"
    assert languages.effective_language(None, "de", "es") == "de"
    assert languages.effective_language(None, None, "pt-br") == "pt-BR"
    # A theme language without a catalog keeps its old meaning for <html lang> elsewhere, English words here.
    assert languages.effective_language(None, None, "nl") == "en"
    assert languages.effective_language(None, None, None) == "en"


@pytest.mark.parametrize(("tag", "long", "short"), [
    ("en", "Saturday, 28 November 2026", "Sat 28 Nov"),
    ("de", "Samstag, 28. November 2026", "Sa., 28. Nov."),
    ("fr", "samedi 28 novembre 2026", "sam. 28 nov."),
    ("es", "sábado, 28 de noviembre de 2026", "sáb, 28 nov"),
    ("pt-BR", "sábado, 28 de novembro de 2026", "sáb., 28 de nov."),
    ("it", "sabato 28 novembre 2026", "sab 28 nov"),
])
def test_long_and_short_dates_per_language(tag: str, long: str, short: str) -> None:
    assert dates.long_date(SATURDAY, tag) == long
    assert dates.short_date(SATURDAY, tag) == short


@pytest.mark.parametrize(("tag", "zone", "same_day", "day_before"), [
    ("en", "Europe/London", "05:30 GMT", "28 Nov, 05:30 GMT"),
    ("de", "Europe/Berlin", "06:30 MEZ", "28. Nov., 06:30 MEZ"),
    ("fr", "Europe/Paris", "06:30 Paris", "28 nov., 06:30 Paris"),
    ("es", "Europe/Madrid", "6:30 CET", "28 nov, 6:30 CET"),
    ("pt-BR", "America/Sao_Paulo", "02:30 BRT", "28 de nov., 02:30 BRT"),
    ("it", "Europe/Rome", "06:30 CET", "28 nov, 06:30 CET"),
])
def test_byline_times_in_the_reader_s_zone_and_language(tag: str, zone: str, same_day: str,
                                                         day_before: str) -> None:
    local_day = MORNING_UTC.astimezone(ZoneInfo(zone)).date()
    assert dates.byline_time(MORNING_UTC, ZoneInfo(zone), local_day, tag) == same_day
    assert dates.byline_time(MORNING_UTC, ZoneInfo(zone), date(2026, 11, 30), tag) == day_before
    assert dates.byline_time(None, ZoneInfo(zone), local_day, tag) == ""


def test_zones_are_named_not_offset() -> None:
    # Where CLDR has no abbreviation in that language (Babel would say "-0300"), the city is shown.
    assert dates.zone_name(ZoneInfo("America/Sao_Paulo"), "de", MORNING_UTC) == "São Paulo"
    assert dates.zone_name(ZoneInfo("America/Sao_Paulo"), "pt-BR", MORNING_UTC) == "BRT"
    assert dates.zone_name(ZoneInfo("Europe/Berlin"), "pt-BR", MORNING_UTC) == "Berlim"
    summer = datetime(2026, 7, 1, 12, tzinfo=UTC)
    assert dates.zone_name(ZoneInfo("Europe/Berlin"), "de", summer) == "MESZ"
    for tag in languages.SUPPORTED:
        for zone in ("America/Sao_Paulo", "Asia/Kolkata", "America/New_York", "Europe/Berlin"):
            name = dates.zone_name(ZoneInfo(zone), tag, MORNING_UTC)
            assert not any(c.isdigit() for c in name), (tag, zone, name)


def test_french_spacing_is_ensured_and_kept() -> None:
    text = 'Bac : comment réussir? Il a dit "non" ; voir https://exemple.fr/a?b=1 à 12:30. « coup sévère » !'
    out = typeset(text, "fr")
    assert out == (f"Bac{NBSP}: comment réussir{NNBSP}? Il a dit «{NNBSP}non{NNBSP}»{NNBSP}; voir "
                   f"https://exemple.fr/a?b=1 à 12:30. «{NNBSP}coup sévère{NNBSP}»{NNBSP}!")
    assert typeset(out, "fr") == out
    # Already correct text (a no-break space from the feed) stays as it is, without doubled spaces.
    assert typeset(f"Le mot «{NNBSP}x{NNBSP}»", "fr") == f"Le mot «{NNBSP}x{NNBSP}»"
    assert typeset("Pourquoi ?!", "fr") == f"Pourquoi{NNBSP}?!"


@pytest.mark.parametrize(("tag", "expected"), [
    ("de", "Er sagte „Nein“ und „vielleicht“."),
    ("en", "Er sagte “Nein” und “vielleicht”."),
    ("es", "Er sagte «Nein» und «vielleicht»."),
    ("it", "Er sagte «Nein» und «vielleicht»."),
    ("pt-BR", "Er sagte “Nein” und “vielleicht”."),
    ("fr", f"Er sagte «{NNBSP}Nein{NNBSP}» und «{NNBSP}vielleicht{NNBSP}»."),
])
def test_quotes_of_the_language(tag: str, expected: str) -> None:
    out = typeset('Er sagte "Nein" und “vielleicht”.', tag)
    assert out == expected
    assert typeset(out, tag) == out


def test_other_languages_leave_punctuation_spacing_alone() -> None:
    assert typeset("Why? Because: time 12:30!", "en") == "Why? Because: time 12:30!"
    assert typeset('5" screen, an inch mark', "de") == '5" screen, an inch mark'
