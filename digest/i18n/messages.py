"""The email's words, marked for ``pybabel extract`` so the catalogs hold them before the email templates
are wired to gettext (issue 13 reshapes those templates; the labels it adds are here too).

Each entry is the exact msgid a template's ``{% trans %}`` block or ``_()`` call produces: Jinja writes a
``{{ name }}`` inside ``{% trans name=… %}`` as ``%(name)s``, and so do these. Once a template says the same,
``pybabel extract`` finds the message there as well and nothing here needs to change; an entry no template or
module uses any more can go.
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
        N_("Hello %(name)s, here are today's top stories:"),
        pgettext("greeting of a reader without a name", "there"),
        N_("Hello, here are today's top stories:"),
        # articles
        N_("Quick Looks"),
        N_("Deep Look"),
        N_("Read the full story"),
        N_("Read the Deep Look: %(title)s"),
        N_("Also covered by"),
        N_("Also covered by:"),
        N_("(untitled)"),
        # plain-text part: the link is the headline's, printed above
        N_("Read the Deep Look: %(title)s (at the link above)"),
        N_("Read the full story at the link above."),
        # an edition without stories
        N_("There are no new stories in this edition."),
        # preheader
        N_("No new stories in this edition."),
        N_("Also today: %(headlines)s"),
        # footer
        N_("You get this email because %(email)s subscribed to %(list)s."),
        N_("You get this email because %(email)s subscribed to %(list)s from %(brand)s."),
        N_("Unsubscribe"),
        N_("Manage your preferences"),
        N_("Unsubscribe: %(url)s"),
        N_("Manage your preferences: %(url)s"),
        # added by the newsroom email (issue 13)
        N_("View in browser"),
        N_("Subscribe"),
        N_("Editor's note"),
        N_("Read on"),
        ngettext("%(num)s min read", "%(num)s min read", 1),
        ngettext("%(num)s story", "%(num)s stories", 1),
        N_("Today's top stories"),
        N_("In this edition"),
    ]
