"""The project's own exceptions. Every message names the file, line, field or address it is about."""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error digest reports to a user (the CLI prints it and exits non-zero)."""

    exit_code = 1


class ConfigError(DigestError):
    """A setting is missing, unknown or of the wrong type."""

    exit_code = 2


class ParseError(DigestError):
    """Input could not be read as an article. ``source`` and ``line`` say where."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.reason = message
        where = source or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class NotFound(DigestError):
    """A list, subscriber, article or edition that was asked for does not exist."""


class TemplateProblem(DigestError):
    """A newsroom template failed to render; the message names the template file and line."""


class SendError(DigestError):
    """A provider refused or failed a request in a way retrying will not fix."""
