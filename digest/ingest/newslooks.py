"""Newslooks text articles → `Article`. Pure: text in, article out, no store and no clock.

The shape, in order (blank lines anywhere are ignored):

1. one header line ``Title/ Outlet/ DATELINE/ Author/ Edition/ lede...`` (fields split at a slash followed by
   white space; a field may be empty except title, outlet and lede);
2. optionally a ``<Topic> Quick Looks`` line, then bullet lines starting with ``-``, ``•``, ``*`` or ``–``
   (bullets straight after the header, without that line, count as Quick Looks too);
3. optionally ``Deep Look: <headline>``;
4. body paragraphs, one per line, with short subheading lines between them;
5. the site's junk (``You must Register or Login to post a comment.``, share bars, ...), which is dropped.
"""

from __future__ import annotations

import re

from digest.errors import ParseError
from digest.ingest.clean import decode_text, is_junk_line, is_trailer_line, normalize_text, squash
from digest.models import ARTICLE_LIMITS, Article, Section, article_id

HEADER_FIELDS = ("title", "outlet", "dateline", "author", "edition", "lede")

_HEADER_SPLIT = re.compile(r"/\s+")
_QUICK_LOOKS = re.compile(r"^(?P<topic>.*?)\s*\bQuick\s+Looks?\s*:?$", re.IGNORECASE)
_BULLET = re.compile(r"^(?:[-*–—]\s+|[•·▪]\s*)(?P<text>\S.*)$")
_DEEP_LOOK = re.compile(r"^Deep\s+Look\s*[:–—-]\s*(?P<title>\S.*)$", re.IGNORECASE)

# Words a title-cased heading leaves in lower case.
_SMALL_WORDS = {
    "a", "an", "the", "and", "or", "but", "nor", "of", "in", "on", "at", "to", "for", "by", "with", "from", "as",
    "vs", "vs.", "via", "into", "onto", "over", "per", "than", "up", "out", "off", "is", "be", "its", "de", "la",
    "le", "et", "und", "der", "die", "das", "von", "y", "e", "o", "do", "da",
}
_TERMINAL = ".!?:;,…"
MAX_HEADING_WORDS = 12
MAX_HEADING_CHARS = 100

# Newslooks is an English-language wire format: every file is in English.
NEWSLOOKS_LANGUAGE = "en"


def parse_newslooks_bytes(data: bytes, *, source: str = "<input>") -> Article:
    return parse_newslooks(decode_text(data, source), source=source)


def parse_newslooks(text: str, *, source: str = "<input>") -> Article:
    """Parse one Newslooks article; raise `ParseError` naming ``source`` and the line when it is not one."""
    lines = [squash(line) for line in normalize_text(text).lstrip("\ufeff").split("\n")]
    start = next((i for i, line in enumerate(lines) if line), None)
    if start is None:
        raise ParseError("empty: no Newslooks header line 'Title/ Outlet/ DATELINE/ Author/ Edition/ lede'",
                         source=source, line=1)
    header = _parse_header(lines[start], source=source, line_no=start + 1)

    quick_looks: list[str] = []
    quick_looks_title: str | None = None
    deep_look_title: str | None = None
    i = start + 1
    # The preamble blocks: Quick Looks (with or without their title line) and the Deep Look headline.
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
        elif not quick_looks and quick_looks_title is None and _QUICK_LOOKS.match(line):
            quick_looks_title = line
            i += 1
        elif not quick_looks and _BULLET.match(line):
            while i < len(lines) and (not lines[i] or _BULLET.match(lines[i])):
                bullet = _BULLET.match(lines[i])
                if bullet:
                    quick_looks.append(bullet.group("text").strip())
                i += 1
        elif deep_look_title is None and _DEEP_LOOK.match(line):
            deep_look_title = _DEEP_LOOK.match(line).group("title").strip()  # type: ignore[union-attr]
            i += 1
        else:
            break

    return Article(
        id=article_id(None, header["outlet"], header["title"]),
        title=header["title"],
        outlet=header["outlet"],
        dateline=header["dateline"] or None,
        author=header["author"] or None,
        edition=header["edition"] or None,
        language=NEWSLOOKS_LANGUAGE,
        summary=header["lede"],
        quick_looks=quick_looks,
        quick_looks_title=quick_looks_title,
        deep_look_title=deep_look_title,
        sections=_sections(_body_lines(lines[i:])),
        source=source,
    )


def _parse_header(line: str, *, source: str, line_no: int) -> dict[str, str]:
    if line.startswith(("<", "{", "[")):
        raise ParseError("not a Newslooks article: this looks like XML, HTML or JSON (try --format feed or json)",
                         source=source, line=line_no)
    fields = [squash(f) for f in _HEADER_SPLIT.split(line, maxsplit=len(HEADER_FIELDS) - 1)]
    if len(fields) < len(HEADER_FIELDS):
        raise ParseError(
            f"not a Newslooks article: the first line must be 'Title/ Outlet/ DATELINE/ Author/ Edition/ lede...' "
            f"(found {len(fields)} of {len(HEADER_FIELDS)} fields)", source=source, line=line_no)
    header = dict(zip(HEADER_FIELDS, fields))
    for name in ("title", "outlet", "lede"):
        if not header[name]:
            raise ParseError(f"the header's {name} field is empty", source=source, line=line_no)
    for name in HEADER_FIELDS:
        limit = ARTICLE_LIMITS.get(name)
        if limit is not None and len(header[name]) > limit:
            raise ParseError(f"the header's {name} field is {len(header[name])} characters (at most {limit}); "
                             "is this a Newslooks header line?", source=source, line=line_no)
    return header


def _body_lines(lines: list[str]) -> list[str]:
    body = []
    for line in lines:
        if not line:
            continue
        if is_trailer_line(line):  # the comment section or footer: nothing after it is the article
            break
        if not is_junk_line(line):
            body.append(line)
    # A heading-shaped line with no paragraph after it ends the text ("Related Topics", "Trending Now"): it is
    # the site's navigation, not the article's.
    while body and looks_like_heading(body[-1]):
        body.pop()
    return body


def _sections(body: list[str]) -> list[Section]:
    sections: list[Section] = []
    current = Section(None, [])
    for index, line in enumerate(body):
        following = body[index + 1] if index + 1 < len(body) else None
        if following is not None and looks_like_heading(line) and not looks_like_heading(following):
            if current.heading is not None or current.paragraphs:
                sections.append(current)
            current = Section(line, [])
        else:
            current.paragraphs.append(line)
    if current.heading is not None or current.paragraphs:
        sections.append(current)
    return sections


def looks_like_heading(line: str) -> bool:
    """Short, no terminal punctuation, and title-ish case (most words that matter start with a capital)."""
    words = line.split()
    if not 1 <= len(words) <= MAX_HEADING_WORDS or len(line) > MAX_HEADING_CHARS:
        return False
    if line.rstrip("\"'”’»)]").endswith(tuple(_TERMINAL)) or _BULLET.match(line):
        return False
    first = line.lstrip("\"'“‘«(")[:1]
    if not (first.isupper() or first.isdigit()):
        return False
    significant = [w for w in words if w.lower().strip("\"'“”‘’«»()") not in _SMALL_WORDS]
    capitalized = [w for w in significant if w.lstrip("\"'“‘«(")[:1].isupper() or w[:1].isdigit()]
    return bool(significant) and len(capitalized) / len(significant) >= 0.75

