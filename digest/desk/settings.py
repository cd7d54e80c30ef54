"""The desk's settings, typed: who the desk records as the editor, and the preview's password."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from digest.config import Settings


def login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "cli"


@dataclass(frozen=True)
class DeskSettings:
    editor: str
    password: str

    @classmethod
    def from_settings(cls, settings: Settings) -> DeskSettings:
        editor = str(settings.desk_editor or "").strip() or login_name()
        return cls(editor=editor[:200], password=str(settings.preview_password or ""))
