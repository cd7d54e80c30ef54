"""The gettext catalogs: ``locales/<lang>/LC_MESSAGES/digest.po``, English (the source) needing none.

The .po files are read at run time (compiled to a gettext catalog in memory, once per process and language),
so a fresh ``pip install`` or a checkout works without a compile step; a ``digest.mo`` next to a .po, which
``pybabel compile`` writes, is used instead when it is at least as new. Fuzzy entries are left out, as gettext
does: a reader sees the English words rather than a guess.
"""

from __future__ import annotations

import threading
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from digest.i18n.languages import SOURCE, gettext_name, normalize

DOMAIN = "digest"
LOCALES = Path(__file__).resolve().parent / "locales"
TEMPLATE = LOCALES / f"{DOMAIN}.pot"
_lock = threading.Lock()


def po_path(language: str) -> Path:
    return LOCALES / gettext_name(language) / "LC_MESSAGES" / f"{DOMAIN}.po"


def translations(language: str) -> NullTranslations:
    """The catalog of ``language`` (a supported tag); the source language gets its own words back."""
    tag = normalize(language)
    with _lock:  # a first call from two page requests at once reads the file once
        return _load(tag)


@cache
def _load(tag: str) -> NullTranslations:
    if tag == SOURCE:
        return NullTranslations()
    po = po_path(tag)
    mo = po.with_suffix(".mo")
    if mo.is_file() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as fh:
            return Translations(fh, domain=DOMAIN)
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=gettext_name(tag), domain=DOMAIN)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def translate(language: str, message: str, **values: Any) -> str:
    """``message`` in ``language``, with ``%(name)s`` placeholders filled from ``values`` (as the templates'
    newstyle gettext does, so one msgid serves Python and templates)."""
    text = translations(language).gettext(message)
    return text % values if values else text


def translate_plural(language: str, singular: str, plural: str, count: int, **values: Any) -> str:
    """The form of ``count`` in ``language``; ``%(num)s`` is the count, as in templates."""
    return translations(language).ngettext(singular, plural, count) % {"num": count, **values}


def translate_in(language: str, context: str, message: str, **values: Any) -> str:
    """``message`` in ``language`` for the gettext ``context`` (a word whose translation depends on its use)."""
    text = str(translations(language).pgettext(context, message))
    return text % values if values else text


class Translator:
    """``_("Hello %(name)s", name=n)`` in one language: what Python code that speaks to readers calls its
    ``_`` (``pybabel extract`` finds the messages by that name)."""

    def __init__(self, language: str) -> None:
        self.language = normalize(language)

    def __call__(self, message: str, **values: Any) -> str:
        return translate(self.language, message, **values)


def fingerprint() -> str:
    """Changes when a catalog file changes: for render caches keyed by what shapes a render. (A running process
    keeps the catalogs it loaded; restart it to see edited translations.)"""
    files = sorted(LOCALES.rglob("*.po")) + sorted(LOCALES.rglob("*.mo"))
    return ";".join(f"{p.relative_to(LOCALES)}:{p.stat().st_mtime_ns}" for p in files)
