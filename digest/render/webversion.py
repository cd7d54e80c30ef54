"""An edition's web version: the HTML a reader got, without anything that is the reader's own.

The stored variant still holds the placeholder tokens of ``personalize``. The web version fills them for nobody
in particular: the template's ``personal`` parts (who the email went to, the unsubscribe and preferences links)
and ``web-hide`` parts (the "view in browser" link, pointless on the page itself) are cut out, and any link
token a newsroom template puts elsewhere becomes the list's subscribe link, so no copy of the page can carry a
working unsubscribe or preferences link.
"""

from __future__ import annotations

import re

from markupsafe import escape

from digest.i18n.languages import SOURCE
from digest.render.personalize import TOKENS, Context, name_fallback, substitute

_PERSONAL = re.compile(
    r"<(p|span|div)\b[^>]*\bclass=\"[^\"]*\b(?:personal|web-hide)\b[^\"]*\"[^>]*>.*?</\1>", re.DOTALL)
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def public_values(subscribe_url: str, context: Context, language: str = SOURCE) -> dict[str, str]:
    """Token → value for a reader nobody in particular: the greeting's fallback name (in the edition's
    ``language``), the subscribe link."""
    values = {"name": name_fallback(language), "email": "you", "unsubscribe_url": subscribe_url,
              "preferences_url": subscribe_url}
    out: dict[str, str] = {}
    for name, token in TOKENS[context].items():
        value = values[name]
        out[token] = str(escape(value)) if context == "html" else value
    return out


def web_html(html: str, subscribe_url: str, banner: str = "", language: str = SOURCE) -> str:
    """``html`` (a stored variant in ``language``) as the public web version; ``banner`` (trusted HTML) opens
    the body."""
    page = _PERSONAL.sub("", html)
    page = substitute(page, public_values(subscribe_url, "html", language))
    if banner:
        # str(): a Markup banner would escape the body tag it is joined to.
        opening = str(banner)
        page = _BODY_OPEN.sub(lambda m: m.group(0) + opening, page, count=1)
    return page


def public_subject(subject: str, subscribe_url: str, language: str = SOURCE) -> str:
    return substitute(subject, public_values(subscribe_url, "header", language))
