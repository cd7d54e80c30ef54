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
HTML5_DOCTYPE = "<!DOCTYPE html>"

cssutils.log.setLevel(logging.CRITICAL)


def inline_css(html: str) -> str:
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
    return str(out)
