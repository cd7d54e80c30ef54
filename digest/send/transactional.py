"""One-off messages that are not editions (confirmation emails, test sends).

Scaffolding until the backends land: writes the message to the file backend's outbox. The sending issue routes
this through the configured backend.
"""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from pathlib import Path

from digest.config import Settings


def send_message(settings: Settings, message: EmailMessage) -> str:
    """Send one complete message; returns a provider id (here: the .eml file's path)."""
    outbox = settings.path(settings.outbox_dir)
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"transactional-{uuid.uuid4().hex}.eml"
    with open(path, "xb") as fh:  # "x": never overwrite a message already written
        fh.write(bytes(message))
    return str(Path(path))
