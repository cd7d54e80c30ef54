"""One-off messages that are not editions (confirmation emails, test sends), through the configured backend."""

from __future__ import annotations

from email.message import EmailMessage

from digest.config import Settings
from digest.send.backends import get_backend


def send_message(settings: Settings, message: EmailMessage, *, via: str | None = None) -> str:
    """Send one complete message through the ``backend`` setting (or ``via``); returns the provider's id for it
    (the .eml path for the file backend, the SMTP reply, SendGrid's X-Message-Id)."""
    backend = get_backend(settings, via)
    with backend:
        return backend.send_message(message)
