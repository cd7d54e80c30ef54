"""RSS (0.9x, 1.0, 2.0) and Atom feeds → `Article`s, through feedparser. Pure: bytes in, articles out.

Real feeds are messy. A feed feedparser can only read with its forgiving parser (a stray ``&``, a wrong
encoding declaration) keeps its recovered items, with a warning; a document with no items that is not a feed is a
`ParseError`. Dates feedparser cannot read (localized day and month names) go through `dates.parse_date`.

Only the story is kept: advertising items are skipped (`ads`), the lead image is a real photo or none
(`images`), the link is the article's own address rather than a tracker's redirect (`urls`), the outlet is the
publisher's name rather than the feed's slogan (`outlets`), and a byline that names the publisher is no byline.
"""

from __future__ import annotations

import io
import re
import time
import xml.parsers.expat
import xml.sax
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser

from digest.errors import ParseError
from digest.ingest.ads import advertising_reason
from digest.ingest.clean import CleanHtml, clean_html, inline_text, squash
from digest.ingest.dates import parse_date, plausible
from digest.ingest.images import Image, choose, pixels
from digest.ingest.language import primary_tag
from digest.ingest.outlets import letters, publisher_name, site_label
from digest.ingest.quicklooks import split_sentences
from digest.ingest.urls import absolute_http_url, canonical_url, is_tracker_redirect, redirect_target
from digest.models import ARTICLE_LIMITS, Article, Section, article_id

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")
# Cut rather than refused: one overlong item must not cost the rest of a feed nobody here can edit.
MAX_OUTLET = ARTICLE_LIMITS["outlet"]
MAX_AUTHOR = ARTICLE_LIMITS["author"]
MAX_TITLE = ARTICLE_LIMITS["title"]


@dataclass
class Skipped:
    """An item left out on purpose (advertising), for the ingest report."""

    title: str
    reason: str
    url: str | None = None


@dataclass
class ParsedFeed:
    articles: list[Article]
    warnings: list[str] = field(default_factory=list)
    title: str | None = None  # the feed's title as written
    outlet: str | None = None  # the publisher's name found in it (`outlets.publisher_name`)
    skipped: list[Skipped] = field(default_factory=list)


def parse_feed(data: bytes, *, source: str, base_url: str | None = None,
               content_type: str | None = None) -> ParsedFeed:
    """Every item of the feed in ``data``. ``base_url`` is where it was fetched from (resolves relative links)."""
    headers = {}
    if base_url:
        headers["content-location"] = base_url
    if content_type:
        headers["content-type"] = content_type
    try:
        # A stream, never a string: feedparser would treat a string as a URL or a file name to open.
        parsed = feedparser.parse(io.BytesIO(data), response_headers=headers, sanitize_html=True,
                                  resolve_relative_uris=True)
    except Exception as exc:  # noqa: BLE001 - feedparser's parsers are third-party code facing hostile input; whatever
        # they raise, the answer for this source is the same: it is not a feed we can read.
        raise ParseError(f"not a readable feed ({type(exc).__name__}: {exc})", source=source) from None

    entries = list(parsed.get("entries") or [])
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not entries:
        if problem is not None or not parsed.get("version"):
            reason = _describe(problem) if problem is not None else "no RSS or Atom elements"
            where = _xml_error_at(data) if isinstance(problem, xml.sax.SAXException) else None
            if where:
                reason += f" (column {where[1]})"
            raise ParseError(f"not an RSS or Atom feed: {reason}", source=source, line=where[0] if where else None)
        return ParsedFeed([], [f"{source}: the feed has no items"], _feed_title(parsed))

    feed = parsed.get("feed") or {}
    raw_title = _feed_title(parsed)
    bases = [base_url, feed.get("link"), *[link.get("href") for link in feed.get("links") or []
                                          if isinstance(link, dict) and link.get("rel") == "self"]]
    site = next((str(b) for b in bases if b and site_label(str(b))), None)
    feed_info = _Feed(id_outlet=_cut(raw_title, MAX_OUTLET),
                      outlet=_cut(publisher_name(raw_title, site), MAX_OUTLET),
                      raw_title=raw_title, site=site_label(site), author=_person(feed))
    language = primary_tag(str(feed.get("language") or ""))  # <language> or the feed's xml:lang
    warnings: list[str] = []
    skipped: list[Skipped] = []
    articles = []
    for number, entry in enumerate(entries, start=1):
        article = _entry_article(entry, number=number, source=source, feed=feed_info, bases=bases,
                                 warnings=warnings, skipped=skipped)
        if article is not None:
            article.language = language
            articles.append(article)
    if problem is not None:
        where = _xml_error_at(data) if isinstance(problem, xml.sax.SAXException) else None
        at = f" at line {where[0]}, column {where[1]}" if where else ""
        warnings.insert(0, f"{source}: the feed is not well-formed ({_describe(problem)}{at}); "
                           f"kept the {len(articles)} item(s) feedparser recovered")
    return ParsedFeed(articles, warnings, raw_title, feed_info.outlet, skipped)


@dataclass
class _Feed:
    id_outlet: str | None  # the title as written: ids of items without a URL were always made from it
    outlet: str | None
    raw_title: str | None
    site: str | None
    author: str | None


def _entry_article(entry: Any, *, number: int, source: str, feed: _Feed, bases: list[Any],
                   warnings: list[str], skipped: list[Skipped]) -> Article | None:
    content_html = _content_html(entry)
    summary_html = str(entry.get("summary") or "")
    summary_clean = clean_html(summary_html)
    body_clean = clean_html(content_html) if content_html else summary_clean

    title = _cut(inline_text(str(entry.get("title") or "")), MAX_TITLE)
    if not title:
        first = split_sentences((summary_clean.paragraphs or body_clean.paragraphs or [""])[0])
        title = _cut(first[0], MAX_TITLE) if first else None
    if not title:
        warnings.append(f"{source}: item {number} has neither a title nor text; skipped")
        return None

    url = _article_url(entry, bases)
    categories = [inline_text(str(tag.get("term") or tag.get("label") or ""))
                  for tag in entry.get("tags") or [] if isinstance(tag, dict)]
    ad = advertising_reason(title=squash(str(entry.get("title") or "")) or title, categories=categories,
                            author=_person(entry), link=url)
    if ad is not None:
        skipped.append(Skipped(title, ad, url))
        return None
    published = _entry_date(entry)
    if published is None:
        raw = dict.get(entry, "published") or dict.get(entry, "updated") or dict.get(entry, "created")
        warnings.append(f"{source}: item {number} ({title[:60]!r}) has no readable date"
                        + (f" ({str(raw)[:60]!r})" if raw else "")
                        + "; --published, else the time it is first ingested, stands in")

    paragraphs = body_clean.paragraphs
    summary = next(iter(summary_clean.paragraphs or paragraphs), None)
    if paragraphs and paragraphs[0] == summary:
        paragraphs = paragraphs[1:]
    image = _image(entry, body_clean, summary_clean, bases)
    return Article(
        id=article_id(url, feed.id_outlet, title, published),
        title=title,
        outlet=feed.outlet,
        author=_cut(_byline(entry, feed), MAX_AUTHOR),
        published_at=published,
        url=url,
        topics=[c for c in dict.fromkeys(categories) if c],
        summary=summary,
        sections=[Section(None, paragraphs)] if paragraphs else [],
        image_url=image.url if image else None,
        image_alt=image.alt if image else None,
        image_width=image.width if image else None,
        image_height=image.height if image else None,
        source=source,
    )


def _article_url(entry: Any, bases: list[Any]) -> str | None:
    """The article's own address: the link, unless it is a tracker's redirect, when the origLink feedburner or
    pheedo kept, the target the redirect carries, or a guid that is a URL stands in."""
    link = absolute_http_url(_entry_link(entry), *bases)
    if link and is_tracker_redirect(link):
        guid = str(entry.get("id") or "")
        for candidate in (entry.get("feedburner_origlink"), entry.get("pheedo_origlink"), redirect_target(link),
                          guid if guid.lower().startswith(("http://", "https://")) else None):
            own = absolute_http_url(str(candidate), *bases) if candidate else None
            if own and not is_tracker_redirect(own):
                link = own
                break
    return canonical_url(link) if link else None


def _byline(entry: Any, feed: _Feed) -> str | None:
    """The item's author, else the feed's; never the publisher or the feed's slogan standing in for one."""
    names = {letters(n) for n in (feed.outlet, feed.raw_title) if n}
    own = _person(entry)
    if own and letters(own) not in names and not any(n and n in letters(own) for n in names):
        return own
    inherited = feed.author
    if not inherited or own:
        return None
    squeezed = letters(inherited)
    # A feed-level author is the publisher far more often than a person ("heise online" on heise.de).
    if squeezed in names or any(n and n in squeezed for n in names) or (feed.site and letters(feed.site) in squeezed):
        return None
    return inherited


def _content_html(entry: Any) -> str:
    contents = [c for c in entry.get("content") or [] if isinstance(c, dict) and c.get("value")]
    if not contents:
        return ""
    # Atom may give several alternatives; the HTML one is the article, a text/plain one its teaser.
    html = [c for c in contents if "html" in str(c.get("type") or "")]
    return str(max(html or contents, key=lambda c: len(str(c.get("value"))))["value"])


def _entry_link(entry: Any) -> str | None:
    link = entry.get("link")
    if link:
        return str(link)
    for candidate in entry.get("links") or []:
        if isinstance(candidate, dict) and candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
            return str(candidate["href"])
    if entry.get("guidislink") and entry.get("id"):
        return str(entry["id"])
    return None


def _entry_date(entry: Any) -> datetime | None:
    # dict.get, not entry.get: feedparser answers a missing "updated" with "published" (and a deprecation
    # warning); we choose the fallback order ourselves.
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = dict.get(entry, key)
        if isinstance(value, time.struct_time):
            try:
                parsed = datetime(*value[:6], tzinfo=UTC)
            except (ValueError, OverflowError):
                continue
            if plausible(parsed):
                return parsed
    for key in ("published", "updated", "created"):
        raw = dict.get(entry, key)
        if isinstance(raw, str):
            from_text = parse_date(raw)
            if from_text is not None:
                return from_text
    return None


def _image(entry: Any, body: CleanHtml, summary: CleanHtml, bases: list[Any]) -> Image | None:
    candidates: list[Image] = []
    media = [m for m in entry.get("media_content") or [] if isinstance(m, dict) and _is_image_media(m)]
    media.sort(key=lambda m: pixels(m.get("width")) or 0, reverse=True)  # the largest rendition reads best
    candidates += [_media_image(m) for m in media if m.get("url")]
    thumbs = [t for t in entry.get("media_thumbnail") or [] if isinstance(t, dict) and t.get("url")]
    thumbs.sort(key=lambda t: pixels(t.get("width")) or 0, reverse=True)
    candidates += [_media_image(t) for t in thumbs]
    for enclosure in entry.get("enclosures") or []:
        href = enclosure.get("href") or enclosure.get("url") if isinstance(enclosure, dict) else None
        kind = str(enclosure.get("type") or "") if isinstance(enclosure, dict) else ""
        if href and (kind.startswith("image/") or (not kind and str(href).lower().endswith(_IMAGE_EXTENSIONS))):
            candidates.append(Image(str(href)))
    candidates += body.images + summary.images
    resolved = []
    for image in candidates:
        absolute = absolute_http_url(image.url, *bases)
        if absolute:
            resolved.append(Image(absolute, image.alt, image.width, image.height, image.link))
    return choose(resolved)


def _media_image(media: dict[str, Any]) -> Image:
    return Image(str(media["url"]), None, pixels(media.get("width")), pixels(media.get("height")))


def _is_image_media(media: dict[str, Any]) -> bool:
    medium = str(media.get("medium") or "")
    kind = str(media.get("type") or "")
    if medium and medium != "image":
        return False
    return not kind or kind.startswith("image/")


def _person(node: Any) -> str | None:
    detail = node.get("author_detail") if hasattr(node, "get") else None
    name = detail.get("name") if isinstance(detail, dict) else None
    text = inline_text(str(name or node.get("author") or "")) if hasattr(node, "get") else ""
    return text or None


def _feed_title(parsed: Any) -> str | None:
    feed = parsed.get("feed") or {}
    return inline_text(str(feed.get("title") or "")) or None


def _cut(text: str | None, limit: int) -> str | None:
    if not text:
        return None
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _describe(problem: BaseException) -> str:
    text = (str(problem).strip() or type(problem).__name__).removeprefix("<unknown>:")
    # SAX's own "12:4:" counts lines of feedparser's rewritten document, not of the file: drop it.
    return re.sub(r"^\d+:\d+:\s*", "", text)[:200]


def _xml_error_at(data: bytes) -> tuple[int, int] | None:
    """(line, column) of the first XML error in the file as written, for messages that point at it."""
    parser = xml.parsers.expat.ParserCreate()
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        return exc.lineno, exc.offset + 1
    except (ValueError, RecursionError):
        return None
    return None
