"""The Jinja i18n extension on an environment: ``{% trans %}`` blocks and ``_()`` in templates, newstyle.

Two ways to pick the language: ``install(env, "de")`` fixes one language for the environment; ``install(env)``
reads it per render from the template variable ``language`` (a supported tag; the source language when absent),
so one cached environment serves every language and two threads rendering different languages at once never
see each other's words.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from digest.i18n.catalog import translations
from digest.i18n.languages import SOURCE

EXTENSION = "jinja2.ext.i18n"
LANGUAGE_VAR = "language"
_EXTENSION_KEY = "jinja2.ext.InternationalizationExtension"


def add_extension(env: Environment) -> None:
    if _EXTENSION_KEY not in env.extensions:
        env.add_extension(EXTENSION)


def install(env: Environment, language: str | None = None) -> Environment:
    """Add the i18n extension to ``env`` and its gettext callables (newstyle: ``_("Hi %(name)s", name=n)``,
    autoescaped values); returns ``env``."""
    add_extension(env)
    # As babel.cfg extracts: whitespace inside {% trans %} collapses, so a wrapped block is one msgid.
    env.policies["ext.i18n.trimmed"] = True
    if language is not None:
        env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
        return env

    def current(context: Context) -> Any:
        return translations(str(context.get(LANGUAGE_VAR) or SOURCE))

    @pass_context
    def gettext(context: Context, message: str) -> str:
        return str(current(context).gettext(message))

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, n: int) -> str:
        return str(current(context).ngettext(singular, plural, n))

    @pass_context
    def pgettext(context: Context, ctx: str, message: str) -> str:
        return str(current(context).pgettext(ctx, message))

    @pass_context
    def npgettext(context: Context, ctx: str, singular: str, plural: str, n: int) -> str:
        return str(current(context).npgettext(ctx, singular, plural, n))

    env.install_gettext_callables(gettext, ngettext, newstyle=True,  # type: ignore[attr-defined]
                                  pgettext=pgettext, npgettext=npgettext)
    return env
