"""HTML and raw text → clean article text: paragraphs only, with the web's furniture left behind.

Feeds wrap their summaries in markup meant for a web page: tracking pixels, share buttons, "Related:" links,
"Continue reading..." / "Read full article >>" / "Leia mais" anchors, "[?]" help links, app and newsletter
promotions. None of that belongs in an email, so it is dropped here, in one place, before any text reaches the
store.

Why a rule list and not a boilerplate library: jusText (and trafilatura, which builds on it) classify the blocks
of a whole web page by length, link density and stop words. A feed item is a fragment of two or three short
paragraphs, and on the shared feeds jusText marks every paragraph "bad" or "short", the story with the junk
(tried: a Guardian summary came out empty). So the rules below, in the languages our feeds use (English, French,
German, Portuguese, Spanish, Italian), are matched against whole paragraphs, anchors and paragraph tails, and
tests/test_ingest_quality.py keeps each of them honest on real and fictional feeds.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from typing import Any

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, Tag
from bs4.builder import ParserRejectedMarkup

from digest.errors import ParseError
from digest.ingest.images import Image, choose, furniture_reason, is_share_link, pixels

# C0/C1 control characters other than tab and newline: PostgreSQL refuses NUL in text, and the rest are never
# meant to be shown.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[^\S\n]+")

# Elements that never carry article text.
_DROP_TAGS = ("script", "style", "noscript", "iframe", "object", "embed", "form", "button", "svg", "canvas",
              "audio", "video", "template", "nav", "footer", "aside", "select", "input", "textarea", "head")

# class/id fragments of share bars, feed flare, ad slots and "related" boxes.
_JUNK_ATTR = re.compile(r"(^|[-_ ])(share|sharing|social|feedflare|sharedaddy|related|advert|ad-slot|ads|promo|"
                        r"newsletter-signup|subscribe|tracking|pixel|jp-relatedposts|wp-share)([-_ ]|$)", re.IGNORECASE)

# Anchor or paragraph text that is navigation, not content, in the languages our feeds come in.
_JUNK_TEXT = re.compile(
    r"^\W*(continue reading|read more|read the full (story|article)|read full (story|article)|keep reading|"
    r"full story|more\.\.\.|click here to read more|weiterlesen|mehr lesen|lire la suite|la suite|leia mais|"
    r"continue lendo|leia a íntegra|leer más|seguir leyendo|continua a leggere|leggi tutto|"
    r"share( this( article| story)?)?( on \w+)?|add to \w+|tweet this|email this|print this|"
    r"(compartilhar|compartir|partager|teilen|condividi)( (no|en|sur|auf|su) \w+)?|"
    r"(share|tweet|pin|email) (on|via) \w+|click to share on .*|related( (articles|posts|stories))?|"
    r"advertisement|anzeige|publicité|publicidade|publicidad|pubblicità|the post .* appeared first on .*)\W*$",
    re.IGNORECASE)

# Promotions of the outlet's app, newsletter or podcast: a paragraph of their own, never the story's.
_PROMO = re.compile(
    r"^\W*(get our (free )?(news )?app\b.*|download (our|the) .{0,40}\bapp\b.*|sign up\b.*|"
    r"subscribe (to|for) (our|the) .*|(get|receive) our .{0,40}(newsletter|briefing|podcast).*|"
    r"follow us on .*|like us on facebook.*|(email|e-mail|contact) \w+( \w+)? with (any )?(tips?|tip-offs)\b.*|"
    r"laden sie (jetzt )?(die|unsere) .{0,30}app.*|abonnieren sie (jetzt )?(den|unseren) .{0,30}newsletter.*|"
    r"(jetzt )?newsletter abonnieren.*|folgen sie uns auf .*|"
    r"téléchargez (l'|l’|notre )?.{0,30}application.*|abonnez-vous à .*|inscrivez-vous à .*|suivez-nous sur .*|"
    r"baixe o (nosso )?aplicativo.*|assine a (nossa )?newsletter.*|inscreva-se (na|em|para) .*|siga-nos .*|"
    r"descarga (la|nuestra) app.*|suscríbete a .*|síguenos en .*|"
    r"scarica (la|l'|l’)?app.*|iscriviti alla (nostra )?newsletter.*|seguici su .*)$", re.IGNORECASE)

# What feeds append to the last sentence of a paragraph: a read-on link's words, a help link's "[?]", a share
# bar flattened into a line. Cut from the tail, so the sentence before it stays. Read-on words count only after a
# sentence's end or before an arrow or ellipsis: "Children should read more." is a sentence, not a link.
_READ_ON = (r"(continue reading|read more|read (the )?full (article|story)|keep reading|weiterlesen|mehr lesen|"
            r"lire la suite|leia mais|continue lendo|leer más|seguir leyendo|continua a leggere|leggi tutto)")
_TAIL = re.compile(
    r"(\s*(\[\?\]|\(\?\)|"
    rf"(?<=[.!?…\"”»)\]])\s*{_READ_ON}\s*(\.\.\.|…|»|>>|→|›)?|\s{_READ_ON}\s*(\.\.\.|…|»|>>|→|›)|"
    r"(add to|share on|compartilhar no|partager sur|teilen auf|compartir en|condividi su) "
    r"(facebook|twitter|x|linkedin|whatsapp|email|e-mail)|tweet this|email this|print this|"
    r"[|·•])\s*)+$", re.IGNORECASE)
_HELP_MARK = re.compile(r"\s*\[\?\]")

# A paragraph that starts like this is a link list, not prose ("Related: Fact check: ...").
_JUNK_PREFIX = re.compile(r"^(related|see also|more on this story|read also|lire aussi|leia também|mehr zum thema)"
                          r"\s*:", re.IGNORECASE)

# Lines of a text article that are the site around it: share bars, comment prompts, ad labels.
_JUNK_LINE = re.compile(
    r"^\W*(advertisement|sponsored|share( this( article| story)?)?:?|share on (facebook|twitter|x|linkedin|"
    r"whatsapp|email)|click to share on .*|tweet|facebook|twitter|linkedin|whatsapp|email|print|"
    r"(facebook|twitter|linkedin|whatsapp|email|print|x)(\s*[|,·•]?\s*(facebook|twitter|linkedin|whatsapp|"
    r"email|print|x))+|continue reading\W*|read more\W*|like this:|loading\.\.\.|"
    r"photo:.*|image:.*|\(?ap photo.*|© ?\d{4}.*|copyright ©? ?\d{4}.*|all rights reserved\.?)\W*$", re.IGNORECASE)

# Lines after which everything is the comment section or the site's footer, never the article.
_TRAILER_LINE = re.compile(
    r"^\W*(you must (register or login|log ?in|be logged in|sign in)( to (post|leave|add) a comment)?.*|"
    r"leave a (reply|comment).*|(\d+ )?comments?( \(\d+\))?|post navigation|related (posts|articles|stories):?|"
    r"previous (post|article)|next (post|article)|you may also like:?|more from .*:|"
    r"subscribe to our newsletter.*|sign up for our newsletter.*|join the conversation.*|"
    r"log ?in to (post|leave) a comment.*|to post a comment.*)\W*$", re.IGNORECASE)


def normalize_text(text: str) -> str:
    """NFC, no control characters, Unix newlines: what every parser works on."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", _CONTROL.sub("", text))


def squash(text: str) -> str:
    """Collapse runs of whitespace (no-break spaces included) to one space."""
    return " ".join(text.split())


def is_junk_line(line: str) -> bool:
    return bool(_JUNK_LINE.match(squash(line)))


def is_trailer_line(line: str) -> bool:
    return bool(_TRAILER_LINE.match(squash(line)))


@dataclass
class CleanHtml:
    paragraphs: list[str]
    image_url: str | None = None
    image_alt: str | None = None
    image_width: int | None = None
    image_height: int | None = None
    images: list[Image] = field(default_factory=list)  # every <img> in document order, furniture included


_BLOCKS = ("p", "div", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section", "article",
           "figcaption", "dd", "dt", "tr", "table", "ul", "ol", "header")


def clean_html(html: str) -> CleanHtml:
    """Paragraphs of readable text from an HTML fragment, plus its first real image (not a pixel)."""
    html = normalize_text(html or "")
    if not html.strip():
        return CleanHtml([])
    if "<" not in html and "&" not in html:
        return CleanHtml(_paragraphs_from_plain(html))
    soup = _soup(html)
    if soup is None:  # markup the HTML parser rejects: keep the words, lose the tags
        return CleanHtml(_paragraphs_from_plain(re.sub(r"<[^>]*>", " ", html)))
    images = _images(soup)
    lead = choose(images)
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for tag in soup.find_all("img"):
        tag.decompose()
    for tag in soup.find_all(True):
        if isinstance(tag, Tag) and not tag.decomposed and _is_junk_element(tag):
            tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for block in soup.find_all(_BLOCKS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    text = soup.get_text()
    if lead is None:
        return CleanHtml(_paragraphs_from_plain(text), images=images)
    return CleanHtml(_paragraphs_from_plain(text), lead.url, lead.alt, lead.width, lead.height, images)


def inline_text(html: str) -> str:
    """One line of text from a title or a name that may carry markup or entities."""
    return squash(" ".join(clean_html(html).paragraphs))


def _soup(html: str) -> BeautifulSoup | None:
    try:
        with warnings.catch_warnings():
            # A fragment that looks like a file name or URL is still just text to us.
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            return BeautifulSoup(html, "html.parser")
    except (ParserRejectedMarkup, AssertionError, ValueError, RecursionError):
        return None


def _paragraphs_from_plain(text: str) -> list[str]:
    out: list[str] = []
    for chunk in re.split(r"\n\s*\n", text):
        para = strip_tail(squash(chunk))
        if para and not is_boilerplate(para):
            out.append(para)
    return out


def strip_tail(paragraph: str) -> str:
    """The paragraph without the read-on words, "[?]" marks and share-bar text a feed appended to it."""
    return _TAIL.sub("", _HELP_MARK.sub("", paragraph)).strip()


def is_boilerplate(paragraph: str) -> bool:
    """A whole paragraph that is the site's, not the story's: navigation, share bars, promotions, ad labels."""
    para = squash(paragraph)
    return bool(_JUNK_TEXT.match(para) or _JUNK_PREFIX.match(para) or is_junk_line(para) or _PROMO.match(para))


def _is_junk_element(tag: Tag) -> bool:
    attrs: dict[str, Any] = tag.attrs if isinstance(tag.attrs, dict) else {}
    raw_classes = attrs.get("class") or []
    classes: list[Any] = [raw_classes] if isinstance(raw_classes, str) else list(raw_classes)
    marker = " ".join([*map(str, classes), str(attrs.get("id") or "")])
    if marker.strip() and _JUNK_ATTR.search(marker):
        return True
    href = attrs.get("href")
    # A mailto: link in a sentence ("Email <a>Nick</a> with tips") carries words of it; a share link never does.
    if tag.name == "a" and isinstance(href, str) and is_share_link(href) and not href.strip().startswith("mailto:"):
        return True
    if tag.name == "a" or tag.name == "span":
        return bool(_JUNK_TEXT.match(squash(tag.get_text())))
    if tag.name == "p":
        text = squash(tag.get_text())
        return bool(_JUNK_PREFIX.match(text) or _JUNK_TEXT.match(text))
    return False


def is_tracking_pixel(url: str, width: object = None, height: object = None) -> bool:
    """A pixel, spacer, button or ad image: anything `images.furniture_reason` refuses as a lead photo."""
    return furniture_reason(Image(url, width=pixels(width), height=pixels(height))) is not None


def _images(soup: BeautifulSoup) -> list[Image]:
    found = []
    for img in soup.find_all("img"):
        if not isinstance(img, Tag):
            continue
        src = img.get("src")
        if not isinstance(src, str) or not src.strip() or src.strip().startswith("data:"):
            continue
        alt = img.get("alt")
        style = str(img.get("style") or "")
        width = pixels(img.get("width")) or _style_pixels(style, "width")
        height = pixels(img.get("height")) or _style_pixels(style, "height")
        anchor = img.find_parent("a")
        href = anchor.get("href") if isinstance(anchor, Tag) else None
        found.append(Image(src.strip(), (squash(alt) or None) if isinstance(alt, str) else None, width, height,
                           href.strip() if isinstance(href, str) else None))
    return found


def _style_pixels(style: str, name: str) -> int | None:
    match = re.search(rf"(?<![-\w]){name}\s*:\s*(\d+)\s*px", style, re.IGNORECASE)
    return pixels(match.group(1)) if match else None


def decode_text(data: bytes, source: str) -> str:
    """Bytes of a text source → str. Only UTF-8 (a BOM is allowed): guessing a legacy encoding would put
    mojibake in front of readers, so a clear error asking for UTF-8 is the better outcome."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ParseError("not valid UTF-16 text despite its byte-order mark", source=source, line=1) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ParseError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}); save it as UTF-8",
                         source=source, line=line) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise ParseError("binary data (a NUL character), not text", source=source, line=text.count("\n", 0, nul) + 1)
    return text
