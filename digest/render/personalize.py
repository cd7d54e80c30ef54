"""Per-recipient values go into an already rendered variant by substituting placeholder tokens.

A variant is rendered once (Jinja → MJML → premailer) with tokens where the reader's name, address and links go;
each recipient then costs one regex pass. Every value is escaped for the context its token stands in:

- ``html``: HTML-escaped (quotes too, so a token inside an attribute stays inside it);
- ``text``: the raw value (plain text needs no escaping);
- ``header``: the raw value, refused if it holds CR, LF or another control character (header injection).

``TOKENS`` is the table the send part uses too: the SendGrid backend passes ``substitutions(recipient)`` as each
personalization's substitutions, so SendGrid does the same replacement server side.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from markupsafe import Markup, escape

from digest.config import Settings
from digest.i18n.catalog import translate_in
from digest.i18n.languages import SOURCE

if TYPE_CHECKING:
    from digest.render.edition import RenderedEdition

Context = Literal["html", "text", "header"]
FIELDS = ("name", "email", "unsubscribe_url", "preferences_url")
CONTEXTS: tuple[Context, ...] = ("html", "text", "header")

# "{{digest:unsubscribe_url:html}}": no Jinja will see it (it is a value, not template source), MRML passes it
# through, and premailer keeps it intact inside attributes (preserve_handlebar_syntax); a test checks both.
TOKENS: dict[str, dict[str, str]] = {
    context: {name: f"{{{{digest:{name}:{context}}}}}" for name in FIELDS} for context in CONTEXTS
}
TOKEN_PATTERN = re.compile(r"\{\{digest:(" + "|".join(FIELDS) + r"):(" + "|".join(CONTEXTS) + r")\}\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# A name-less subscriber is greeted "Hello there,", in the email's language ("Hallo zusammen").
NAME_FALLBACK = "there"
NAME_FALLBACK_CONTEXT = "greeting of a reader without a name"
SAMPLE_EMAIL = "reader@example.org"  # fictional: what previews and `digest build` use without a subscriber


class HeaderInjection(ValueError):
    """A value meant for a mail header contains CR, LF or another control character."""


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str | None
    unsubscribe_url: str
    preferences_url: str
    subscriber_id: int | None = None

    def value(self, name: str, language: str = SOURCE) -> str:
        """The reader's ``name`` value; ``language`` (the email's) words the greeting of a reader without one."""
        if name == "name":
            return (self.name or "").strip() or name_fallback(language)
        return str(getattr(self, name))


def name_fallback(language: str = SOURCE) -> str:
    """What stands for the name of a reader who gave none ("there" in "Hello there")."""
    return translate_in(language, NAME_FALLBACK_CONTEXT, NAME_FALLBACK)


def template_values(context: Context) -> dict[str, Markup]:
    """What templates see as ``recipient.*``: the tokens, marked safe so autoescape leaves them alone."""
    return {name: Markup(token) for name, token in TOKENS[context].items()}


def escape_for(context: Context, value: str) -> str:
    if context == "html":
        return str(escape(value))
    if context == "header":
        if _CONTROL.search(value):
            raise HeaderInjection(f"a header value contains a line break or control character: {value!r}")
        return value
    return value


def substitutions(recipient: Recipient, contexts: tuple[Context, ...] = CONTEXTS,
                  language: str = SOURCE) -> dict[str, str]:
    """Token → escaped value for every token of ``contexts`` (SendGrid personalization substitutions);
    ``language``: the email's (``RenderedEdition.language``)."""
    out: dict[str, str] = {}
    for context in contexts:
        for name, token in TOKENS[context].items():
            out[token] = escape_for(context, recipient.value(name, language))
    return out


def substitute(template: str, values: Mapping[str, str]) -> str:
    """Replace every token in one pass (a value that looks like a token is never expanded again)."""
    if "{{digest:" not in template:
        return template
    return TOKEN_PATTERN.sub(lambda m: values.get(m.group(0), m.group(0)), template)


def personalize(rendered: RenderedEdition, recipient: Recipient) -> tuple[str, str, str]:
    """(subject, html, text) of one recipient's copy of a rendered variant."""
    values = substitutions(recipient, language=rendered.language)
    return substitute(rendered.subject, values), substitute(rendered.html, values), substitute(rendered.text, values)


def neutralize(value: str) -> str:
    """Break token look-alikes in article content, so an article cannot pull in a reader's address or links."""
    return value.replace("{{digest:", "{ {digest:") if "{{digest:" in value else value


def recipient_for(settings: Settings, list_id: int, subscriber_id: int, email: str, name: str | None) -> Recipient:
    """A subscriber's values with their signed links (from the audience part's tokens)."""
    from digest.audience import tokens

    return Recipient(
        email=email, name=name, subscriber_id=subscriber_id,
        unsubscribe_url=tokens.unsubscribe_url(settings, subscriber_id, list_id, email),
        preferences_url=tokens.preferences_url(settings, subscriber_id, list_id, email),
    )


def sample_recipient(settings: Settings, list_id: int) -> Recipient:
    """The fictional reader used when a list has no subscriber yet (id 0)."""
    return recipient_for(settings, list_id, 0, SAMPLE_EMAIL, None)
