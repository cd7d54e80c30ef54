"""The double opt-in email: built from templates (autoescaped) in the reader's language, sent through the sending
part's transactional seam."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from digest.audience.lists import effective_language
from digest.audience.pages import render
from digest.audience.tokens import confirm_url
from digest.config import Settings
from digest.i18n.catalog import Translator
from digest.i18n.languages import effective_language as pick_language
from digest.store.tables import MailingListRow


def build_confirmation(settings: Settings, list_row: MailingListRow, subscriber_id: int, email: str,
                       name: str | None = None, *, version: int = 0, language: str | None = None) -> EmailMessage:
    """``language``: the subscriber's own (None: the list's, else theme.language)."""
    url = confirm_url(settings, subscriber_id, list_row.id, email, version=version)
    tag = pick_language(language, None, effective_language(settings, list_row))
    context = {"list_title": list_row.title or list_row.name, "name": name, "url": url,
               "hours": settings.confirm_max_age_hours, "postal_address": settings.postal_address,
               "from_name": list_row.from_name, "language": tag}
    _ = Translator(tag)
    message = EmailMessage()
    message["Subject"] = _("Please confirm your subscription to %(list)s", list=context["list_title"])
    message["From"] = _address(list_row.from_name, list_row.from_email)
    message["To"] = _address(name or "", email)
    if list_row.reply_to:
        message["Reply-To"] = list_row.reply_to
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=list_row.from_email.rpartition("@")[2] or None)
    # An automatic reply to a form: auto-responders must not answer it (RFC 3834).
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(render("email/confirm.txt", context))
    message.add_alternative(render("email/confirm.html", context), subtype="html")
    # After the bodies: setting the content clears every Content-* header set before.
    message["Content-Language"] = tag
    return message


def _address(display: str, email: str) -> Address | str:
    local, _, domain = email.rpartition("@")
    try:
        return Address(display_name=display, username=local, domain=domain)
    except (ValueError, IndexError):
        return email


def send_confirmation(settings: Settings, list_row: MailingListRow, subscriber_id: int, email: str,
                      name: str | None = None, *, version: int = 0, language: str | None = None) -> str:
    from digest.send.transactional import send_message

    message = build_confirmation(settings, list_row, subscriber_id, email, name, version=version,
                                 language=language)
    return send_message(settings, message)
