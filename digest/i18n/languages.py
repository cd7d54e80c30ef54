"""The languages digest speaks, as BCP 47 tags, and the language a reader gets.

A tag is read with Babel's ``Locale.parse`` so every spelling of it (``pt_BR``, ``pt-br``, ``PT-BR``) ends up as
one canonical tag; a tag with a region is accepted for a language whose catalog has none (``de-AT`` → ``de``),
since that catalog serves every region. Anything else is refused with the list of supported tags.
"""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError

# The first is the source language of the catalogs.
SUPPORTED: tuple[str, ...] = ("en", "de", "fr", "es", "pt-BR", "it")
SOURCE = SUPPORTED[0]


class UnknownLanguage(ValueError):
    """A language tag digest has no catalog for, or that is not a language tag at all."""


def supported_text() -> str:
    return ", ".join(SUPPORTED)


@lru_cache(maxsize=256)
def normalize(tag: str) -> str:
    """The supported tag ``tag`` names, e.g. ``"pt_br"`` → ``"pt-BR"``; UnknownLanguage otherwise."""
    raw = (tag or "").strip()
    try:
        locale = Locale.parse(raw.replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        raise UnknownLanguage(f"{raw!r} is not a supported language (supported: {supported_text()})") from None
    for candidate in SUPPORTED:
        wanted = _parts(candidate)
        if (locale.language, locale.territory) == wanted or (wanted[1] is None and locale.language == wanted[0]):
            return candidate
    raise UnknownLanguage(f"{raw!r} is not a supported language (supported: {supported_text()})")


def _parts(tag: str) -> tuple[str, str | None]:
    language, _, territory = tag.partition("-")
    return language, territory or None


def babel_locale(tag: str) -> Locale:
    """Babel's locale of a supported tag (dates, numbers and zone names in that language)."""
    return Locale.parse(normalize(tag).replace("-", "_"))


def gettext_name(tag: str) -> str:
    """The folder name of the tag's catalog under ``locales/`` (``pt-BR`` → ``pt_BR``, gettext's spelling)."""
    return normalize(tag).replace("-", "_")


def effective_language(subscriber_language: str | None, list_language: str | None,
                       theme_language: str | None = None) -> str:
    """What a reader gets: their own language, else the list's, else ``theme.language``, else the source.

    A ``theme.language`` without a catalog (``nl``) falls back to the source language for the words, so an old
    config keeps working; the tags stored on lists and subscribers were checked when they were set."""
    for tag in (subscriber_language, list_language, theme_language):
        if tag:
            try:
                return normalize(tag)
            except UnknownLanguage:
                continue
    return SOURCE


def from_accept_language(header: str | None) -> str | None:
    """The supported language a browser's Accept-Language header prefers most, or None.

    Only for pages that know no reader and no list (a broken link): everywhere else the reader's or the list's
    language wins over the browser's."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        try:
            return normalize(tag)
        except UnknownLanguage:
            continue
    return None
