"""Is this article a live blog? One answer for the whole pipeline.

A live blog is a stream of moments (a match, a night of results), updated all day under one URL. Ingest derives
no Quick Looks from one (its sentences are moments, not the story), and rank leaves out one that started before
the edition's window (`digest.rank.stale`). Markers in English, French, German, Portuguese, Spanish and Italian,
from the title or the URL.
"""

from __future__ import annotations

import re

_TITLE = re.compile(
    r"(?:[-–—:|]\s*live!?\s*$|^\s*live\s*[:|–—-]|\blive\b\W*$|\b(?:live|as it happened)\s*[!:]"
    r"|\blive (?:updates?|coverage|blog)\b|\bas it happened\b|\blive-?blog\b|\bliveblog\b|\ben direct\b"
    r"|\bao vivo\b|\ben vivo\b|\bin diretta\b|\bminute[- ]by[- ]minute\b|\b(?:live|news)?-?ticker\b)",
    re.IGNORECASE)
_URL = re.compile(r"(?:/live/|/ticker/|live-?blog|/liveticker|/en-direct|/ao-vivo|/en-vivo)", re.IGNORECASE)


def is_live_title(title: str | None) -> bool:
    return bool(_TITLE.search(title or ""))


def is_live_blog(title: str | None, url: str | None) -> bool:
    return is_live_title(title) or bool(_URL.search(url or ""))
