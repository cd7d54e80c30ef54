"""The email as the preview's iframe shows it: links open in a new tab, and dark mode can be forced.

A browser applies ``@media (prefers-color-scheme: dark)`` only when the whole browser (or OS) is dark, and an
iframe cannot be told otherwise. So the dark toggle rewrites the email's own media queries: every
``prefers-color-scheme: dark`` condition becomes always true and every ``light`` one always false. The preview
then shows exactly the dark styles the template ships, in any browser, with no emulation.
"""

from __future__ import annotations

import re

# Inside a media query list. `(min-width: 0px)` holds for every viewport; `not all` never does.
_DARK = re.compile(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.IGNORECASE)
_LIGHT = re.compile(r"\(\s*prefers-color-scheme\s*:\s*light\s*\)", re.IGNORECASE)
_MEDIA = re.compile(r"@media([^{]*)\{", re.IGNORECASE)
_HEAD_OPEN = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)
_STYLE = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.IGNORECASE | re.DOTALL)


def _rewrite_condition(condition: str) -> str:
    if _LIGHT.search(condition):
        # A light-only block must not apply. Queries are comma-separated alternatives; drop the light ones.
        parts = [p for p in condition.split(",") if not _LIGHT.search(p)]
        condition = ",".join(parts) if parts else " not all "
    return _DARK.sub("(min-width: 0px)", condition)


def force_dark(html: str) -> str:
    """The email with its dark-mode media blocks made unconditional, and the page's colour scheme set to dark."""
    def rewrite_style(match: re.Match[str]) -> str:
        css = _MEDIA.sub(lambda m: "@media" + _rewrite_condition(m.group(1)) + "{", match.group(2))
        return match.group(1) + css + match.group(3)

    # Only inside <style> elements: an article that merely mentions "@media" in its text stays as written.
    html = _STYLE.sub(rewrite_style, html)
    return inject_head(html, '<meta name="color-scheme" content="dark">'
                             "<style>:root{color-scheme:dark}</style>")


def inject_head(html: str, snippet: str) -> str:
    match = _HEAD_OPEN.search(html)
    if match is None:
        return snippet + html
    return html[:match.end()] + snippet + html[match.end():]


def frame_html(html: str, *, dark: bool) -> str:
    """What the iframe loads. A link clicked in the preview opens in a new tab instead of inside the frame."""
    if dark:
        html = force_dark(html)
    return inject_head(html, '<base target="_blank">')
