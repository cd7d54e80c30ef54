"""Feed items that are advertising, not news: never stored, and reported as skipped with the reason.

Ad networks (pheedo, feedburner's ad slots, DoubleClick) insert their items into a newspaper's feed with the
outlet's own title and date; they look like stories to every stage after ingest. What gives them away is the label
the law or the network makes them carry ("Featured Advertiser", "Sponsored", "Anzeige", "Publicidade"...), in the
title, a category or the byline, or a link that goes straight to an ad server. Only those places are read: a
story that mentions a sponsor in its text is still a story.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Labels of paid content, in the languages our feeds come in.
_LABEL = (r"featured advertiser|advertiser content|advertisement|advertorial|sponsored( content| post| story)?|"
          r"paid (content|post|partner content)|partner content|promoted( content)?|promotion|"
          r"anzeige|werbung|gesponsert|sponsored post|"
          r"publicité|publi-?reportage|contenu (sponsorisé|partenaire)|"
          r"publicidade|conteúdo (patrocinado|de marca)|patrocinado|informe publicitário|"
          r"publicidad|contenido patrocinado|publirreportaje|"
          r"pubblicità|contenuto sponsorizzato|publiredazionale")
# The label as the whole text, as a prefix ("Sponsored: ...", "[Anzeige] ..."), or as a suffix ("... (Sponsored)").
_LABELLED = re.compile(
    rf"^\W*({_LABEL})\W*$|^\W*[\[(]?({_LABEL})[\])]?\s*[:|–—-]\s*|^\W*[\[(]({_LABEL})[\])]|"
    rf"[\[(]({_LABEL})[\])]\W*$|\s[|–—-]\s*({_LABEL})\W*$", re.IGNORECASE)

# Ad servers, whatever their top-level domain. Read on the item's address after its origLink replaced a tracker
# redirect: pheedo sends real stories through ads.pheedo.com too, but gives those an origLink.
_AD_LINK = re.compile(
    r"^https?://([^/?#]*\.)?(doubleclick|googleadservices|googlesyndication|adserver|adclick|adform|adnxs|"
    r"servedby|adtech|criteo|taboola|outbrain)\.|^https?://ads?\.[^/?#]+/|/adclick\b|/aclk\b",
    re.IGNORECASE)


def advertising_reason(*, title: str, categories: Iterable[str] = (), author: str | None = None,
                       link: str | None = None) -> str | None:
    """``link`` is the item's address as the reader settled it (origLink over a redirect). Why this item is an ad ("title says 'Sponsored'"), or None when nothing marks it as one."""
    match = _LABELLED.search(" ".join(title.split()))
    if match:
        return f"advertising: the title says {_label(match)!r}"
    for category in categories:
        match = _LABELLED.search(" ".join(str(category).split()))
        if match:
            return f"advertising: category {_label(match)!r}"
    if author:
        match = _LABELLED.search(" ".join(author.split()))
        if match:
            return f"advertising: the byline says {_label(match)!r}"
    if link and _AD_LINK.search(link.strip()):
        return f"advertising: the link goes to an ad server ({_host(link)})"
    return None


def _label(match: re.Match[str]) -> str:
    return next(g for g in match.groups() if g)


def _host(url: str) -> str:
    found = re.match(r"^[a-z]+://([^/?#]+)", url.strip(), re.IGNORECASE)
    return found.group(1) if found else url[:60]
