"""The digest email's words, in the source language: the registry of what the email says (the catalog test
checks each is in digest.pot, and the email tests check no edition in another language still shows one).

Each entry is the exact msgid a template's ``{% trans %}`` block or ``_()`` call, or a ``Translator`` call in
``digest.render``, produces: Jinja writes a ``{{ name }}`` inside ``{% trans name=… %}`` as ``%(name)s``, and so
do these. A message the email no longer uses goes from here too.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Marks ``message`` for extraction without translating it (gettext's convention)."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    """Marks a message with a plural for extraction (the source language's rule)."""
    return singular if n == 1 else plural


def pgettext(context: str, message: str) -> str:
    """Marks a message used in one ``context`` for extraction."""
    return message


def email_messages() -> list[str]:
    """Every message of the digest email, in the source language (also what the catalog test reads)."""
    return [
        # masthead and greeting; the name is the reader's placeholder, filled per reader
        ngettext("%(num)s story", "%(num)s stories", 1),
        ngettext("%(num)s min read", "%(num)s min read", 1),
        N_("View in browser"),
        ngettext("Hello %(name)s, here is today's story.", "Hello %(name)s, here are today's %(num)s stories.", 1),
        pgettext("greeting of a reader without a name", "there"),
        # articles (labels built in digest.render.context)
        N_("Quick Looks"),
        N_("Read the full story"),
        N_("Read the Deep Look: %(title)s"),
        N_("Read on at %(outlet)s"),
        N_("Also covered by"),
        N_("(untitled)"),
        N_("More"),
        # plain-text part: the link is the headline's, printed above
        N_("%(label)s (at the link above)"),
        N_("Also covered by:"),
        N_("Read it in your browser: %(url)s"),
        N_("Subscribe to %(list)s: %(url)s"),
        # an edition without stories
        N_("There are no new stories in this edition."),
        # preheader
        N_("No new stories in this edition."),
        N_("Also today: %(headlines)s"),
        # footer
        N_("Forwarded this email?"),
        N_("Subscribe to %(list)s"),
        N_("Read it in your browser"),
        N_("You get this email because %(email)s subscribed to %(list)s."),
        N_("You get this email because %(email)s subscribed to %(list)s from %(brand)s."),
        N_("Unsubscribe"),
        N_("Manage your preferences"),
        N_("Unsubscribe: %(url)s"),
        N_("Manage your preferences: %(url)s"),
    ]
