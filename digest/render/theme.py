"""The email's theme: config ``theme`` over built-in defaults, validated before it reaches CSS.

Autoescape protects HTML, not CSS: a colour value goes into a style attribute and a <style> block, so every
colour must be a hex colour and the logo must be an http(s) URL; anything else is a ConfigError naming the key.
"""

from __future__ import annotations

import re
from typing import Any

from digest.config import Settings
from digest.errors import ConfigError

DEFAULTS: dict[str, str] = {
    "brand_name": "",  # empty: the list's from_name
    "primary_color": "#1a56db",
    "text_color": "#1f2328",
    "background_color": "#f3f4f6",
    "card_color": "#ffffff",
    "muted_color": "#57606a",
    "logo_url": "",
    "footer_text": "",
    "language": "en",
    "dark_background_color": "#111418",
    "dark_card_color": "#1c2027",
    "dark_text_color": "#e6e8eb",
    "dark_muted_color": "#aab1bb",
    "dark_primary_color": "#8ab4f8",
}
# Switches (TOML booleans): ``sections`` groups the stories after the lead under a header per topic.
FLAGS: dict[str, bool] = {"sections": False}
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")


def theme_flags(settings: Settings) -> dict[str, bool]:
    """The theme's switches; a value that is not a boolean is a ConfigError naming the key."""
    raw: dict[str, Any] = dict(settings.theme or {})
    flags = dict(FLAGS)
    for key in FLAGS:
        if key in raw:
            if not isinstance(raw[key], bool):
                raise ConfigError(f"theme.{key} must be true or false, not {raw[key]!r}")
            flags[key] = raw[key]
    return flags


def resolve_theme(settings: Settings, from_name: str | None = None) -> dict[str, str]:
    raw: dict[str, Any] = {k: v for k, v in dict(settings.theme or {}).items() if k not in FLAGS}
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"theme: unknown key(s) {', '.join(unknown)} (known: {', '.join([*DEFAULTS, *FLAGS])})")
    theme = dict(DEFAULTS)
    for key, value in raw.items():
        if not isinstance(value, str):
            raise ConfigError(f"theme.{key} must be a string, not {type(value).__name__}")
        theme[key] = value.strip()
    for key, value in theme.items():
        if key.endswith("_color") and not _COLOR.match(value):
            raise ConfigError(f"theme.{key} must be a hex colour such as #1a56db, not {value!r}")
    if theme["logo_url"] and not re.match(r"^https?://", theme["logo_url"], re.IGNORECASE):
        raise ConfigError(f"theme.logo_url must be an http(s) URL, not {theme['logo_url']!r}")
    if not _LANGUAGE.match(theme["language"]):
        raise ConfigError(f"theme.language must be a language tag such as en or de-CH, not {theme['language']!r}")
    if not theme["brand_name"]:
        theme["brand_name"] = from_name or str(settings.from_name)
    return theme
