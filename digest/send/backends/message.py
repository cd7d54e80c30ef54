"""One recipient's complete message for the MIME backends (SMTP, file), from render's pre-encoded variant."""

from __future__ import annotations

import secrets

from digest.config import Settings
from digest.render.message import prepare_message
from digest.send.backends.base import Content, Recipient


def message_id(content: Content, recipient: Recipient, domain: str) -> str:
    """Edition and subscriber in the Message-ID, so a bounce that quotes it can be traced back."""
    return f"<digest.{content.edition_id}.{recipient.subscriber_id}.{secrets.token_hex(6)}@{domain}>"


def render_message(settings: Settings, content: Content, recipient: Recipient) -> bytes:
    # prepare_message encodes the variant once and caches it; render() only splices in this reader's values.
    prepared = prepare_message(settings, content.list_row, content.rendered)
    return prepared.render(recipient.person, message_id=message_id(content, recipient, prepared.domain))
