"""JSON articles → `Article`s: an array, one object, or JSON Lines, each in `Article.to_json()`'s shape.

That is the shape `digest articles --json` prints, so an export imports back unchanged. Every value is checked
before anything is stored; a mistake names the line (JSON Lines) or the item number (an array) and the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from digest.errors import ParseError
from digest.ingest.clean import decode_text, normalize_text
from digest.ingest.images import MAX_SIDE
from digest.ingest.language import primary_tag
from digest.models import ARTICLE_LIMITS, Article, Section, article_id

_OPTIONAL_TEXT = ("outlet", "author", "dateline", "edition", "url", "language", "summary", "quick_looks_title",
                  "deep_look_title", "image_url", "image_alt", "source")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_KNOWN = set(Article.__dataclass_fields__)


@dataclass
class ParsedJson:
    articles: list[Article]
    warnings: list[str] = field(default_factory=list)


def parse_json_bytes(data: bytes, *, source: str) -> ParsedJson:
    return parse_json(decode_text(data, source), source=source)


def parse_json(text: str, *, source: str) -> ParsedJson:
    text = normalize_text(text).lstrip("\ufeff")
    if not text.strip():
        raise ParseError("empty: expected a JSON array of articles or JSON Lines", source=source, line=1)
    records: list[tuple[str, int | None, Any]] = []  # (where, line, value)
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise ParseError(f"not valid JSON: {exc.msg} (column {exc.colno})", source=source,
                             line=exc.lineno) from None
        records = _json_lines(text, source)
    except RecursionError:
        raise ParseError("JSON nested too deeply", source=source, line=1) from None
    else:
        if isinstance(whole, list):
            records = [(f"item {n}", None, value) for n, value in enumerate(whole, start=1)]
        else:
            records = [("the object", 1, whole)]
    warnings: list[str] = []
    articles = [_article(value, where=where, line=line, source=source, warnings=warnings)
                for where, line, value in records]
    return ParsedJson(articles, warnings)


def _json_lines(text: str, source: str) -> list[tuple[str, int | None, Any]]:
    records: list[tuple[str, int | None, Any]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append((f"line {number}", number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ParseError(f"not valid JSON Lines: {exc.msg} (column {exc.colno})", source=source,
                             line=number) from None
        except RecursionError:
            raise ParseError("JSON nested too deeply", source=source, line=number) from None
    return records


def _article(value: Any, *, where: str, line: int | None, source: str, warnings: list[str]) -> Article:
    def fail(message: str) -> ParseError:
        prefix = "" if line is not None else f"{where}: "
        return ParseError(prefix + message, source=source, line=line)

    if not isinstance(value, dict):
        raise fail(f"expected an article object, found {type(value).__name__}")
    unknown = sorted(set(value) - _KNOWN)
    if unknown:
        warnings.append(f"{source}: {where}: ignored unknown field(s) {', '.join(map(str, unknown))}")
    data: dict[str, Any] = {}

    title = value.get("title")
    if not isinstance(title, str) or not title.strip():
        raise fail("field 'title' must be a non-empty string")
    data["title"] = _text(title)
    for name in _OPTIONAL_TEXT:
        item = value.get(name)
        if item is not None and not isinstance(item, str):
            raise fail(f"field {name!r} must be a string or null, not {type(item).__name__}")
        data[name] = _text(item) if item else None
    for name, limit in ARTICLE_LIMITS.items():
        if name in data and data[name] and len(data[name]) > limit:
            raise fail(f"field {name!r} is {len(data[name])} characters (at most {limit})")
    if data["language"] is not None:
        language = primary_tag(data["language"])
        if language is None:
            raise fail(f"field 'language' must be a BCP 47 language tag such as 'en' or 'pt-BR', "
                       f"not {data['language'][:40]!r}")
        data["language"] = language
    for name in ("topics", "quick_looks"):
        items = value.get(name) or []
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise fail(f"field {name!r} must be a list of strings")
        data[name] = [_text(i) for i in items if i.strip()]
    for name in ("image_width", "image_height"):
        size = value.get(name)
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                                 or not 1 <= size <= MAX_SIDE):
            raise fail(f"field {name!r} must be a whole number of pixels from 1 to {MAX_SIDE}, or null")
        data[name] = size
    for name in ("quick_looks_derived", "pinned"):
        flag = value.get(name, False)
        if not isinstance(flag, bool):
            raise fail(f"field {name!r} must be true or false")
        data[name] = flag
    data["sections"] = _sections(value.get("sections"), fail)
    data["published_at"] = _published(value.get("published_at"), fail)

    given_id = value.get("id")
    if given_id is None:
        given_id = article_id(data["url"], data["outlet"], data["title"], data["published_at"])
    elif not isinstance(given_id, str) or not _ID.match(given_id) or len(given_id) > ARTICLE_LIMITS["id"]:
        raise fail("field 'id' must be a string of letters, digits, '.', '_', ':' or '-' "
                   f"(at most {ARTICLE_LIMITS['id']})")
    data["id"] = given_id
    if data["source"] is None:
        data["source"] = source
    return Article(**data)


def _sections(value: Any, fail: Any) -> list[Section]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail("field 'sections' must be a list of {heading, paragraphs}")
    sections = []
    for n, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise fail(f"sections[{n}] must be an object with heading and paragraphs")
        heading = item.get("heading")
        paragraphs = item.get("paragraphs") or []
        if heading is not None and not isinstance(heading, str):
            raise fail(f"sections[{n}].heading must be a string or null")
        if not isinstance(paragraphs, list) or not all(isinstance(p, str) for p in paragraphs):
            raise fail(f"sections[{n}].paragraphs must be a list of strings")
        sections.append(Section(_text(heading) if heading else None, [_text(p) for p in paragraphs if p.strip()]))
    return sections


def _published(value: Any, fail: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail("field 'published_at' must be an ISO 8601 string or null")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise fail(f"field 'published_at' is not an ISO 8601 time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise fail(f"field 'published_at' is out of range: {value[:40]!r}") from None


def _text(value: str) -> str:
    return normalize_text(value).strip()
