"""Tidy the plain-text part: at most one blank line in a row, lines wrapped near 76 characters.

Bullets keep a hanging indent; URLs are never broken (a broken URL is a dead link in a text mail client).
"""

from __future__ import annotations

import re
import textwrap

WIDTH = 76
_BULLET = re.compile(r"^(\s*(?:[-*•]|\d+\.)\s+)")


def wrap_line(line: str, width: int = WIDTH) -> list[str]:
    if len(line) <= width:
        return [line]
    bullet = _BULLET.match(line)
    lead = bullet.group(1) if bullet else re.match(r"^\s*", line).group(0)  # type: ignore[union-attr]
    return textwrap.wrap(
        line, width=width, subsequent_indent=" " * len(lead),
        break_long_words=False, break_on_hyphens=False,
    ) or [line]


def tidy(text: str, width: int = WIDTH) -> str:
    out: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if not line and (not out or not out[-1]):
            continue
        out.extend(wrap_line(line, width))
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"
