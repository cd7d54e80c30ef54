"""Which image leads an article: a real photo, never the site's furniture around the story.

Feeds put share buttons ("Add to Facebook", 16 px), feed flare, ad banners, tracking pixels and spacers into
their items, often before or instead of a photo. Any of those shown at the top of a story in an email, stretched
to the column, is worse than no image at all, so a candidate is refused on any sign that it is furniture: a
known size under `MIN_SIDE` pixels, a share/ad/tracker host or path (the image's own or that of the link around
it), or alt text that names a button. The first candidate left, in the feed's own order of preference
(``media:content``, ``media:thumbnail``, an image enclosure, then the body's images), is the lead image, with its
width and height kept when the feed gives them so the email never shows it larger than it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Under this many pixels on either side an image is an icon, a button or a strip, not a photo.
MIN_SIDE = 100
# Nobody's photo is wider than this; a larger "size" is a typo we do not let stretch a layout.
MAX_SIDE = 20_000


@dataclass(frozen=True)
class Image:
    url: str
    alt: str | None = None
    width: int | None = None
    height: int | None = None
    link: str | None = None  # the href of the anchor around a body image: share buttons are links to share URLs


# Hosts that serve ads, tracking, share widgets or feed flare, whatever their top-level domain.
_FURNITURE_HOST = re.compile(
    r"(^|\.)(doubleclick|googleadservices|googlesyndication|adservice|pheedo|addthis|sharethis|addtoany|"
    r"feedburner|feedproxy|feedsportal|pixel\.wp|stats\.wordpress|quantserve|scorecardresearch|"
    r"imrworldwide|chartbeat|adnxs|adform|criteo|taboola|outbrain|moatads)\.|"
    r"^(ads?|adserver|adclick|pubads|pixel|beacon|track|tracking|stats|counter)\.", re.IGNORECASE)

# Paths and queries of the same: feedburner flare (~ff, ~a) and its pixel (~r), pheedo's img.phdo/click.phdo,
# share endpoints, ad slots, spacers and icon folders.
_FURNITURE_PATH = re.compile(
    r"/~(ff|a|r|f)/|\.phdo\b|/sharer(\.php)?\b|/share(r|button|-button|_button)?[/.?_-]|/intent/tweet|"
    r"/home\?status=|/bookmark\.php|/(ads?|adserver|adclick|banners?|sponsors?)/|[/_-](ad|ads|banner)[_-]?\d+x\d+|"
    r"/(icons?|buttons?|btn|badges?|emoji|smilies|social)/|spacer\.gif|blank\.gif|clear\.gif|"
    r"transparent\.(gif|png)|1x1|pixel\.(gif|png)|/pixel[/?]|/beacon[/?]|/track(ing)?[/?]|/stats?[/?]|"
    r"/count(er)?[/?]|\.php\?.*\b(uid|id)=", re.IGNORECASE)

# Where a share button's link goes (the image itself may sit on the outlet's own host).
_SHARE_LINK = re.compile(
    r"(facebook\.[a-z.]+/(sharer|share|dialog)|twitter\.[a-z.]+/(home\?status|intent|share)|x\.com/intent|"
    r"linkedin\.[a-z.]+/(share|shareArticle)|pinterest\.[a-z.]+/pin|reddit\.[a-z.]+/submit|"
    r"plus\.google\.[a-z.]+/share|api\.whatsapp|wa\.me/|^mailto:|digg\.[a-z.]+/submit|"
    r"del\.icio\.us/post|stumbleupon\.[a-z.]+/submit)", re.IGNORECASE)

# Alt text of buttons and badges, in the languages our feeds come in.
_BUTTON_ALT = re.compile(
    r"^\W*(share|share (this|on \w+)|add to \w+|tweet( this)?|pin it|email( this)?|e-mail|print|like|follow( us)?|"
    r"subscribe|rss|feed|icon|logo|button|advertisement|advert|ad|sponsored|anzeige|werbung|teilen|"
    r"auf \w+ teilen|bei \w+ teilen|partager|partager sur \w+|publicité|compartilhar|compartilhar no \w+|"
    r"publicidade|compartir|compartir en \w+|publicidad|condividi|condividi su \w+|pubblicità|"
    r"facebook|twitter|linkedin|whatsapp|pinterest|reddit|digg|delicious|stumbleupon|google\+?)\W*$",
    re.IGNORECASE)


def pixels(value: object) -> int | None:
    """A size attribute as pixels ("640", "640px", " 640 "); None for percentages, ems and nonsense."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d{1,6})(\.\d+)?\s*(px)?\s*", str(value), re.IGNORECASE)
    if not match:
        return None
    number = int(match.group(1))
    return number if 0 < number <= MAX_SIDE else (0 if number == 0 else None)


def furniture_reason(image: Image) -> str | None:
    """Why ``image`` is not a lead photo (a share button, a pixel, an ad...), or None when it may be one."""
    for side, size in (("wide", image.width), ("high", image.height)):
        if size is not None and size < MIN_SIDE:
            return f"{size} px {side}"
    if _FURNITURE_HOST.search(_host(image.url)) or _FURNITURE_PATH.search(image.url):
        return "a share, ad or tracking image"
    if image.link and (_SHARE_LINK.search(image.link) or _FURNITURE_HOST.search(_host(image.link))
                       or _FURNITURE_PATH.search(image.link)):
        return "a link to a share, ad or tracking address"
    if image.alt and _BUTTON_ALT.match(image.alt):
        return f"alt text {image.alt!r}"
    return None


def is_share_link(href: str) -> bool:
    """A link that shares, bookmarks or mails the story instead of telling it."""
    return bool(_SHARE_LINK.search(href.strip()))


def choose(candidates: list[Image]) -> Image | None:
    """The first candidate that is not furniture."""
    return next((c for c in candidates if furniture_reason(c) is None), None)


def _host(url: str) -> str:
    match = re.match(r"^[a-z][a-z0-9+.-]*://([^/?#:@]*@)?([^/?#:]*)", url.strip(), re.IGNORECASE)
    return match.group(2).lower() if match else ""
