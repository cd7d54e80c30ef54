"""Inline CSS with premailer, keeping what mail clients need from the <style> blocks.

What is the same for every variant of a template is paid once: the parsed rules of each <style> block are
cached by the block's text (premailer caches cssutils' parse but formats every rule again on every call, about
half its time), and the float-to-align pass, which parses each image's style with cssutils and which MJML's
images (never floated) do not need, is off.

Offline only (no stylesheet fetching, no link rewriting), ``!important`` kept (dark-mode rules must beat the
inline styles), style blocks kept verbatim so every ``@media`` block (responsive columns, prefers-color-scheme)
survives cssutils untouched, the doctype kept, and cssutils' chatter about properties it does not know
(``mso-*``, ``-webkit-*``) silenced.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from typing import Any

import cssutils
from premailer import Premailer

_DOCTYPE = re.compile(r"^\s*<!doctype[^>]*>", re.IGNORECASE)
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ATTR = {name: re.compile(rf'\s{name}="([^"]*)"', re.IGNORECASE) for name in ("src", "width")}
HTML5_DOCTYPE = "<!DOCTYPE html>"

cssutils.log.setLevel(logging.CRITICAL)


_RULES_CACHE_SIZE = 64
_rules_cache: OrderedDict[tuple[str, int], tuple[list[Any], list[Any]]] = OrderedDict()
_rules_lock = threading.Lock()


class _CachingPremailer(Premailer):  # type: ignore[misc]
    """premailer with each <style> block's parsed rules kept across calls (the options below never change)."""

    def _parse_style_rules(self, css_body: str, ruleset_index: int) -> tuple[list[Any], list[Any]]:
        key = (css_body or "", ruleset_index)
        with _rules_lock:
            hit = _rules_cache.get(key)
            if hit is not None:
                _rules_cache.move_to_end(key)
                # Rules are tuples of strings; the lists are copied because premailer extends them.
                return list(hit[0]), list(hit[1])
        rules, leftover = super()._parse_style_rules(css_body, ruleset_index)
        with _rules_lock:
            _rules_cache[key] = (list(rules), list(leftover))
            while len(_rules_cache) > _RULES_CACHE_SIZE:
                _rules_cache.popitem(last=False)
        return rules, leftover

    def _style_to_basic_html_attributes(self, element: Any, style_content: str, force: bool = False) -> None:
        # premailer splits every element's merged style again to find align/valign/bgcolor/width/height; most
        # elements of a template share a handful of styles, so the attributes a style gives are kept by style.
        attributes = _basic_attributes.get(style_content)
        if attributes is None:
            probe = _Probe()
            super()._style_to_basic_html_attributes(probe, style_content, force=True)
            attributes = tuple(probe.attrib.items())
            if len(_basic_attributes) < _BASIC_CACHE_SIZE:
                _basic_attributes[style_content] = attributes
        for key, value in attributes:
            if (key in element.attrib and not force) or key in self.disable_basic_attributes:
                continue
            element.attrib[key] = value


class _Probe:
    """Stands in for an element to collect the attributes premailer would set from a style."""

    def __init__(self) -> None:
        self.attrib: dict[str, str] = {}


_BASIC_CACHE_SIZE = 4096
_basic_attributes: dict[str, tuple[tuple[str, str], ...]] = {}


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
    out = _CachingPremailer(
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
        align_floating_images=False,
    ).transform(pretty_print=False)
    if doctype and not _DOCTYPE.match(out):
        out = HTML5_DOCTYPE + "\n" + out
    return _restore_pixel_widths(str(out), widths)
