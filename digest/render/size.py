"""Keep the HTML under ``max_html_bytes`` (Gmail clips a message above about 102 KB).

Trimming never cuts markup: the edition is rendered again with less content, first with shorter teasers
(each step of TEASER_LEVELS), then, at the shortest teasers, with the lowest-ranked articles left out (a
binary search for the most articles that fit). The size counted includes room for the per-recipient values
that replace the placeholder tokens later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from digest.errors import DigestError
from digest.render.personalize import TOKENS

T = TypeVar("T")

# Most bytes one token's value can take once escaped (names are at most 300 characters, addresses 320; "&#34;"
# is the longest escape), so an edition that fits with tokens still fits for every reader.
_MAX_VALUE_BYTES = {"name": 300 * 5, "email": 320 * 5}
_URL_ALLOWANCE = 300


class TooLarge(DigestError):
    """Even one article with the shortest teasers does not fit."""


@dataclass
class Fit(Generic[T]):
    result: T
    count: int  # articles kept
    level: int  # teaser level used
    size: int


def personalization_reserve(document: str, base_url: str) -> int:
    """Bytes the tokens in ``document`` may grow by when replaced with a reader's escaped values."""
    reserve = 0
    for table in TOKENS.values():
        for name, token in table.items():
            n = document.count(token)
            if n:
                most = _MAX_VALUE_BYTES.get(name, len(base_url) + _URL_ALLOWANCE)
                reserve += n * max(0, most - len(token))
    return reserve


def fit(render: Callable[[int, int], T], size: Callable[[T], int], *, count: int, levels: int,
        limit: int) -> Fit[T]:
    """The least trimmed rendering whose size is under ``limit``: all articles at the first teaser level that
    fits, else the most articles that fit at the last level."""
    for level in range(levels):
        result = render(count, level)
        measured = size(result)
        if measured < limit:
            return Fit(result, count, level, measured)
    last = levels - 1
    best: Fit[T] | None = None
    lo, hi = 1, count - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        result = render(mid, last)
        measured = size(result)
        if measured < limit:
            best = Fit(result, mid, last, measured)
            lo = mid + 1
        else:
            hi = mid - 1
    if best is None:
        raise TooLarge(f"the edition does not fit in max_html_bytes ({limit:,} bytes) even with one article and "
                       "the shortest teasers; shorten the templates or raise max_html_bytes")
    return best
