"""Sending backends: ``get_backend(settings, via=None)`` picks one by name (``backend`` setting by default)."""

from __future__ import annotations

from digest.config import Settings
from digest.errors import ConfigError
from digest.send.backends.base import Backend

BACKENDS = ("file", "smtp", "sendgrid")


def get_backend(settings: Settings, via: str | None = None, *, sandbox: bool = False) -> Backend:
    name = via or settings.backend
    if name == "file":
        from digest.send.backends.file import FileBackend

        return FileBackend(settings, sandbox=sandbox)
    if name == "smtp":
        from digest.send.backends.smtp import SmtpBackend

        return SmtpBackend(settings, sandbox=sandbox)
    if name == "sendgrid":
        from digest.send.backends.sendgrid import SendGridBackend

        return SendGridBackend(settings, sandbox=sandbox)
    raise ConfigError(f"backend: unknown sending backend {name!r} (choose {', '.join(BACKENDS)})")


__all__ = ["BACKENDS", "Backend", "get_backend"]
