"""The file backend: each message becomes a new .eml file in ``outbox_dir`` (the default, and `make demo`'s)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

from digest.config import Settings
from digest.send.backends.base import Backend, BatchResult, Content, PermanentError, Recipient, Schedule
from digest.send.backends.message import render_message


class FileBackend(Backend):
    name = "file"
    max_batch_size = 1

    def __init__(self, settings: Settings, *, sandbox: bool = False) -> None:
        super().__init__(settings, sandbox=sandbox)
        self.outbox = settings.path(settings.outbox_dir)

    def open(self) -> None:
        # Once per send, not once per message: every caller opens the backend (`with backend:`) first.
        self.outbox.mkdir(parents=True, exist_ok=True)

    def build_payload(self, content: Content, recipients: Sequence[Recipient],
                      schedule: Schedule | None) -> tuple[str, bytes]:
        recipient = recipients[0]
        name = f"e{content.edition_id}-s{recipient.subscriber_id}-{secrets.token_hex(4)}.eml"
        return name, render_message(self.settings, content, recipient)

    def post(self, payload: tuple[str, bytes]) -> str:
        name, data = payload
        return self._write(name, data)

    def parse_response(self, response: str, recipients: Sequence[Recipient]) -> BatchResult:
        return BatchResult(accepted=[r.delivery_id for r in recipients], provider_message_id=response)

    def _write(self, name: str, data: bytes) -> str:
        path = self.outbox / name
        try:
            # "x": a message already written is never overwritten, even by a name collision.
            with open(path, "xb") as fh:
                fh.write(data)
        except OSError as exc:
            raise PermanentError(f"{path}: cannot write message: {exc}") from exc
        return str(Path(path))

    def send_message(self, message: EmailMessage) -> str:
        return self._write(f"transactional-{secrets.token_hex(8)}.eml", bytes(message))
