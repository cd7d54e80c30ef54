"""Inline CSS with premailer, keeping what mail clients need from the <style> blocks.

Offline only (no stylesheet fetching, no link rewriting), ``!important`` kept (dark-mode rules must beat the
inline styles), style blocks kept verbatim so every ``@media`` block (responsive columns, prefers-color-scheme)
survives cssutils untouched, the doctype kept, and cssutils' chatter about properties it does not know
(``mso-*``, ``-webkit-*``) silenced.
"""

from __future__ import annotations

import logging
import re

import cssutils
from premailer import Premailer

_DOCTYPE = re.compile(r"^\s*<!doctype[^>]*>", re.IGNORECASE)
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ATTR = {name: re.compile(rf'\s{name}="([^"]*)"', re.IGNORECASE) for name in ("src", "width")}
HTML5_DOCTYPE = "<!DOCTYPE html>"

cssutils.log.setLevel(logging.CRITICAL)


def _pixel_widths(html: str) -> dict[str, str]:
    """src → width of every image MJML gave a pixel ``width`` attribute."""
    widths: dict[str, str] = {}
    for tag in _IMG.findall(html):
        src, width = _ATTR["src"].search(tag), _ATTR["width"].search(tag)
        if src and width and width.group(1).isdigit():
            widths[src.group(1)] = width.group(1)
    return widths


def _restore_pixel_widths(html: str, widths: dict[str, str]) -> str:
    # premailer turns MJML's fluid ``style="width:100%"`` into ``width="100%"`` over the pixel width, and
    # Outlook desktop, which ignores both CSS widths and percentages on images, then shows the file's own size.
    def fix(match: re.Match[str]) -> str:
        tag = match.group(0)
        src = _ATTR["src"].search(tag)
        if src is None or src.group(1) not in widths:
            return tag
        return _ATTR["width"].sub(f' width="{widths[src.group(1)]}"', tag, count=1)

    return _IMG.sub(fix, html) if widths else html


def inline_css(html: str) -> str:
    widths = _pixel_widths(html)
    doctype = _DOCTYPE.match(html)
    if doctype:
        # premailer keeps a doctype only when lxml reports it back in the same spelling (upper case).
        html = HTML5_DOCTYPE + html[doctype.end():]
    out = Premailer(
        html,
        base_url=None,
        allow_network=False,
        allow_loading_external_files=False,
        disable_link_rewrites=True,
        keep_style_tags=True,
        strip_important=False,
        remove_classes=False,
        exclude_pseudoclasses=True,
        # Placeholder tokens such as {{digest:unsubscribe_url:html}} must reach personalize() unchanged.
        preserve_handlebar_syntax=True,
        cssutils_logging_level=logging.CRITICAL,
    ).transform(pretty_print=False)
    if doctype and not _DOCTYPE.match(out):
        out = HTML5_DOCTYPE + "\n" + out
    return _restore_pixel_widths(str(out), widths)
