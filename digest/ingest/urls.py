"""Article URLs: absolute, http(s) only, and canonical (the feed's own tracking parameters removed).

The canonical URL is the article's identity (see `models.article_id`), so the same story fetched through two
feeds that tag their links differently (``?xtor=RSS-3208``, ``?wt_mc=rss...``, ``utm_*``) is one article. The
render stage adds the newsroom's own UTM parameters later. A feed's link that goes through a click-tracking
redirect (pheedo's ``click.phdo``, feedburner's ``~r/``, ``feedproxy``) is not the article's address:
`is_tracker_redirect` tells the feed reader to take the item's origLink or permalink guid instead.

courlan was evaluated for this (``clean_url``/``normalize_url``) and not adopted: it brings babel (36 MB) and tld
for this one job, it sorts query parameters (which would change the id of every stored article whose URL has
two), its non-strict mode keeps ``wt_mc`` and ``xtor``-style tags, and its strict mode drops ordinary parameters
(``?b=1&a=2``). The tracking-parameter names below follow its list of click ids and campaign tags.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

_TRACKING_PARAM = re.compile(
    r"^(utm_\w+|xtor|wt_mc|wt\.mc_id|wt_zmc|at_\w+|ns_\w+|(fb|g|d|tw|y|ms|wb|gb)clid|msclkid|igshid|mc_cid|mc_eid|"
    r"cmpid|ocid|icid|_ga|_gl|mkt_tok|_hsenc|_hsmi|hsctatracking|pk_\w+|mtm_\w+|piwik_\w+|itm_\w+|"
    r"oly_(anon|enc)_id|vero_(conv|id)|s_cid|ncid|sr_share|ref_src)$", re.IGNORECASE)

# Click-tracking redirects that stand between a feed and its articles, whatever their top-level domain.
_TRACKER = re.compile(
    r"^https?://([^/?#]*\.)?(feedproxy\.google|feeds\.feedburner|feedburner|pheedo|feedsportal|"
    r"doubleclick|googleadservices|adclick|clicks?|track|tracking)\.|"
    r"/~r/|\bclick\.phdo\b|/adclick\b|/clk[;/]|/redirect(\.php)?\?(.*&)?(url|u|to|target)=", re.IGNORECASE)


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


def is_tracker_redirect(url: str) -> bool:
    """A click-tracking or ad-server redirect, not the article's own address."""
    return bool(_TRACKER.search(url))


def redirect_target(url: str) -> str | None:
    """The http(s) address a tracker redirect carries in its query (``?url=https%3A...``), if it carries one."""
    try:
        query = parse_qsl(urlsplit(url).query, keep_blank_values=False)
    except ValueError:
        return None
    for _, value in query:
        if _is_http(value.strip()) and not is_tracker_redirect(value.strip()):
            return value.strip()
    return None


def _is_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    # Control characters (NUL above all, which PostgreSQL refuses) never belong in a link.
    return (parts.scheme.lower() in ("http", "https") and bool(parts.netloc)
            and not any(ord(c) < 32 or c == " " or 127 <= ord(c) < 160 for c in url))
