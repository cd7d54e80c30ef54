"""Article URLs: absolute, http(s) only, and canonical (the feed's own tracking parameters removed).

The canonical URL is the article's identity (see `models.article_id`), so the same story fetched through two
feeds that tag their links differently (``?xtor=RSS-3208``, ``?wt_mc=rss...``, ``utm_*``) is one article. The
render stage adds the newsroom's own UTM parameters later.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

_TRACKING_PARAM = re.compile(r"^(utm_\w+|xtor|wt_mc|wt\.mc_id|at_\w+|ns_\w+|fbclid|gclid|dclid|mc_cid|mc_eid|"
                             r"cmpid|ocid|icid|_ga|mkt_tok)$", re.IGNORECASE)


def absolute_http_url(url: str | None, *bases: str | None) -> str | None:
    """``url`` resolved against the first usable base; None unless the result is an http(s) URL.

    Anything else (``javascript:``, ``data:``, a bare path with no base) would become a broken or hostile link
    in an email, so it is dropped rather than stored.
    """
    if not url or not url.strip():
        return None
    url = "".join(url.split())  # feeds wrap long links over lines
    try:
        resolved = url
        if not _is_http(resolved):
            for base in bases:
                if base and _is_http(base.strip()):
                    resolved = urljoin(base.strip(), url)
                    break
        return resolved if _is_http(resolved) else None
    except ValueError:  # e.g. an invalid IPv6 host
        return None


def canonical_url(url: str) -> str:
    """The URL without fragment and tracking parameters; other query parameters keep their order."""
    try:
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING_PARAM.match(k)]
        return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", urlencode(query), ""))
    except ValueError:
        return url


def _is_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    # Control characters (NUL above all, which PostgreSQL refuses) never belong in a link.
    return (parts.scheme.lower() in ("http", "https") and bool(parts.netloc)
            and not any(ord(c) < 32 or c == " " or 127 <= ord(c) < 160 for c in url))
