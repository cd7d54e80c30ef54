"""A publisher's name from a feed's title, which is often a slogan or a section page's title.

Feed titles are written for feed readers and search engines: "Le Monde.fr - Actualités et Infos en France et dans
le monde", "World news | The Guardian", "heise developer neueste Meldungen", "All TPM News". A byline needs the
publisher. The rule, in order:

1. a title split by " - ", " | ", " – ", " — ", " :: ", " » ", " > " or ": " into parts keeps the part that names the
   site's domain (``theguardian.com`` → "The Guardian"); with no such part, the first part of " - " and ": "
   titles (name first, slogan after), the last of " | " titles (the web's "Section | Site" convention);
2. the site's top-level domain shown as part of the name goes ("Le Monde.fr" → "Le Monde");
3. a known feed label around the name goes: "... neueste Meldungen", "... - Latest news", "All ... News",
   "Actualités ...", "Últimas notícias ...".

"heise developer neueste Meldungen" becomes "heise developer", the name of the heise section the feed is: the
feed's <author> ("heise online") names the publishing house, but "heise developer" is what the newsroom cites.
The ``outlet_names`` setting still overrides any of this, keyed by the feed's title as written or the name found.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_SEPARATORS = re.compile(r"\s+(\||-|–|—|::|»|>)\s+|:\s+")
# Feed labels that are never part of a publisher's name, as a suffix or a prefix of the remaining name.
_LABEL_SUFFIX = re.compile(
    r"\s+(neueste meldungen|aktuelle (nachrichten|meldungen)|schlagzeilen|"
    r"(latest|breaking|top) (news|stories|headlines)|headlines|top stories|rss( feed)?|news feed|"
    r"(toute l['’]|l['’])?actualités?( .*)?|à la une|la une|"
    r"últimas notícias( .*)?|últimas noticias( .*)?|ultime notizie( .*)?)$", re.IGNORECASE)
_LABEL_AROUND = re.compile(r"^(all|latest|top|the latest)\s+(?P<name>.+?)\s+(news|stories|headlines|articles|posts)$",
                           re.IGNORECASE)
_TLD_SUFFIX = re.compile(r"(?<=\w)\.(com|fr|de|co\.uk|uk|com\.br|br|es|it|net|org|info|ch|at|be|pt|mx|ar)$",
                         re.IGNORECASE)
_SECOND_LEVEL = {"co", "com", "org", "net", "gov", "ac", "edu", "ne", "or"}


def publisher_name(title: str | None, site_url: str | None = None) -> str | None:
    """The publisher's name in a feed ``title``; ``site_url`` (the feed's own link) helps pick the part."""
    if not title or not title.strip():
        return None
    title = " ".join(title.split())
    site = site_label(site_url)
    separators = [m.group(1) or ":" for m in _SEPARATORS.finditer(title)]
    parts = [p.strip() for p in _SEPARATORS.split(title)[::2] if p and p.strip()]
    if len(parts) > 1:
        named = [p for p in parts if site and _names_site(p, site)]
        if named:
            chosen = named[0]
        elif separators and separators[0] == "|":
            chosen = parts[-1]
        else:
            chosen = parts[0]
    else:
        chosen = title
    chosen = _TLD_SUFFIX.sub("", chosen).strip()
    around = _LABEL_AROUND.match(chosen)
    if around:
        chosen = around.group("name")
    stripped = _LABEL_SUFFIX.sub("", chosen).strip()
    return stripped or chosen or title


def site_label(url: str | None) -> str | None:
    """The label just left of a site's public suffix: "theguardian" for https://www.theguardian.com/us,
    "bbc" for www.bbc.co.uk (a two-label suffix such as co.uk or com.br counts as one)."""
    if not url:
        return None
    try:
        host = (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return None
    labels = [label for label in host.split(".") if label]
    if len(labels) < 2:
        return None
    labels = labels[:-1]  # the top-level domain
    if len(labels) >= 2 and labels[-1] in _SECOND_LEVEL:
        labels = labels[:-1]
    return labels[-1] or None


def letters(text: str) -> str:
    return re.sub(r"[^\w]|_", "", text.casefold())


def _names_site(part: str, site: str) -> bool:
    squeezed = letters(_TLD_SUFFIX.sub("", part))
    bare = letters(re.sub(r"^(the|le|la|les|der|die|das|o|a|el|il)\s+", "", part, flags=re.IGNORECASE))
    site = letters(site)
    return bool(site) and len(site) >= 3 and (site in (squeezed, bare) or squeezed.startswith(site)
                                              or site.startswith(squeezed) and len(squeezed) >= 4)
