"""The Jinja environment of the public pages and the confirmation email, autoescaped everywhere.

The pages speak the reader's language: the i18n extension reads it from the template variable ``language``
(``digest.i18n.jinja``), which ``render`` always sets (the source language when the caller gives none).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from digest.i18n import dates
from digest.i18n import jinja as i18n_jinja
from digest.i18n.languages import SOURCE

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates" / "public"


@lru_cache(maxsize=1)
def environment() -> Environment:
    # HTML templates escape every value; the plain-text email part must not, or readers would see "&amp;".
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # ``{{ day | long_date(language) }}``: a date the way the page's language writes it.
    env.filters["long_date"] = dates.long_date
    return i18n_jinja.install(env)


def render(name: str, context: dict[str, Any]) -> str:
    """Render ``name``; ``context["language"]`` (a supported tag) picks the words, English when absent."""
    return environment().get_template(name).render(**{"language": SOURCE, **context})
