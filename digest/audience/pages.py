"""The Jinja environment of the public pages and the confirmation email, autoescaped everywhere."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates" / "public"


@lru_cache(maxsize=1)
def environment() -> Environment:
    # HTML templates escape every value; the plain-text email part must not, or readers would see "&amp;".
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, context: dict[str, Any]) -> str:
    return environment().get_template(name).render(**context)
