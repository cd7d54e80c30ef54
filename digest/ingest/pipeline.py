"""Sources → parsed articles → the store, one transaction per source.

A source is a file, a folder (each article file in it is a source of its own), an http(s) feed URL, or ``-``
(standard input). Each is read and parsed completely before its transaction starts, so a broken source stores
nothing and changes nothing, while the sources around it are still stored. The report says, per source, how many
articles were new, updated or unchanged, or why the source failed.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from digest.errors import DigestError, ParseError
from digest.ingest.feeds import Skipped, parse_feed
from digest.ingest.fetch import fetch
from digest.ingest.jsonl import parse_json_bytes
from digest.ingest.language import detect_language
from digest.ingest.newslooks import parse_newslooks_bytes
from digest.ingest.quicklooks import derive_quick_looks
from digest.ingest.topics import TopicRule, assign_topics, normalize_topic, rename_outlet
from digest.models import Article
from digest.store.articles import upsert_article
from digest.store.db import Store

FORMATS: tuple[str, ...] = ("auto", "newslooks", "feed", "json")
# Files a folder contributes; other files in it (README.md, images) are not articles.
ARTICLE_SUFFIXES = (".txt", ".json", ".jsonl", ".ndjson", ".rss", ".atom", ".xml", ".rdf")
STDIN = "-"


@dataclass
class Parsed:
    articles: list[Article]
    format: str
    warnings: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # A feed's title as written, when its outlet is the shorter publisher's name found in it.
    feed_title: str | None = None


def detect_format(data: bytes) -> str:
    """What ``--format auto`` picks: markup is a feed, ``[`` or ``{`` is JSON, anything else Newslooks text."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n\x0c")
    if head.startswith(b"<"):
        return "feed"
    if head.startswith((b"[", b"{")):
        return "json"
    return "newslooks"


def parse_bytes(data: bytes, *, source: str, fmt: str = "auto", base_url: str | None = None,
                content_type: str | None = None) -> Parsed:
    """Pure: the articles in one source's bytes. Raises `ParseError` and nothing else on bad input."""
    chosen = detect_format(data) if fmt == "auto" else fmt
    if chosen == "newslooks":
        return Parsed([parse_newslooks_bytes(data, source=source)], chosen)
    if chosen == "json":
        parsed_json = parse_json_bytes(data, source=source)
        return Parsed(parsed_json.articles, chosen, parsed_json.warnings)
    if chosen == "feed":
        feed = parse_feed(data, source=source, base_url=base_url, content_type=content_type)
        return Parsed(feed.articles, chosen, feed.warnings, feed.skipped, feed.title)
    raise ParseError(f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})", source=source)


def finish(article: Article, *, published: datetime | None, topics: Sequence[str],
           rules: Sequence[TopicRule], outlet_names: Mapping[str, str] | None = None,
           feed_title: str | None = None) -> Article:
    """What every article gets whatever its format: a date if it came without one and one was given, the
    newsroom's name for its outlet and its topics, its language (detected when the source did not say), and
    Quick Looks derived from its text when the source had none: two to five, flagged as derived, or none when the
    text has too little for two good ones. The id was computed by the reader, from the source's own outlet name,
    so renaming never changes it. ``feed_title`` is the feed's title as written: ``outlet_names`` and
    topic_rules' ``outlets`` may name it instead of the publisher's name the reader found in it."""
    if article.published_at is None and published is not None:
        article.published_at = published
    found = article.outlet
    rename_outlet(article, outlet_names or {}, feed_title=feed_title)
    aliases = [t for t in (feed_title,) if t and article.outlet == found]
    paragraphs = [p for section in article.sections for p in section.paragraphs]
    if article.language is None:
        article.language = detect_language(" ".join([article.title, article.summary or "", *paragraphs]))
    if not article.quick_looks:
        article.quick_looks = derive_quick_looks(article.title, article.summary, paragraphs,
                                                 language=article.language)
        article.quick_looks_derived = bool(article.quick_looks)
    assign_topics(article, cli_topics=topics, rules=rules, outlet_aliases=aliases)
    return article


@dataclass
class SourceReport:
    source: str
    format: str | None = None
    status: Literal["ok", "failed"] = "ok"
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    article_ids: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: list[Skipped] = field(default_factory=list)  # items left out on purpose (advertising), with why

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, "status": self.status, "new": self.new,
                "updated": self.updated, "unchanged": self.unchanged, "articles": self.article_ids,
                "skipped": [{"title": s.title, "url": s.url, "reason": s.reason} for s in self.skipped],
                "warnings": self.warnings, "error": self.error}


@dataclass
class IngestReport:
    sources: list[SourceReport]

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources if s.status == "failed"]

    @property
    def totals(self) -> dict[str, int]:
        return {"new": sum(s.new for s in self.sources), "updated": sum(s.updated for s in self.sources),
                "unchanged": sum(s.unchanged for s in self.sources), "failed": len(self.failed)}

    def to_json(self) -> dict[str, Any]:
        return {"sources": [s.to_json() for s in self.sources], "totals": self.totals}


@dataclass
class _Source:
    name: str
    kind: Literal["file", "url", "stdin", "missing", "empty-folder"]
    path: Path | None = None


def expand_sources(sources: Sequence[str]) -> list[_Source]:
    """Folders become their article files (recursively, sorted, hidden ones skipped)."""
    out: list[_Source] = []
    for raw in sources:
        if raw == STDIN:
            out.append(_Source("<stdin>", "stdin"))
        elif raw.lower().startswith(("http://", "https://")):
            out.append(_Source(raw, "url"))
        elif os.path.isdir(raw):
            files = sorted(p for p in Path(raw).rglob("*")
                           if p.is_file() and p.suffix.lower() in ARTICLE_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(raw).parts))
            out.extend(_Source(str(p), "file", p) for p in files)
            if not files:
                out.append(_Source(raw, "empty-folder"))
        elif os.path.exists(raw):
            out.append(_Source(raw, "file", Path(raw)))
        else:
            out.append(_Source(raw, "missing"))
    return out


def ingest_sources(store: Store, sources: Sequence[str], *, fmt: str = "auto", published: datetime | None = None,
                   topics: Sequence[str] = (), rules: Sequence[TopicRule] = (), feed_timeout: float = 20.0,
                   outlet_names: Mapping[str, str] | None = None,
                   read_stdin: Callable[[], bytes] | None = None, now: datetime | None = None) -> IngestReport:
    """Ingest every source; a failed one is reported and the others are still stored."""
    if fmt not in FORMATS:
        raise DigestError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    now = now or datetime.now(UTC)
    stdin_data: bytes | None = None
    reports = []
    for spec in expand_sources(sources):
        report = SourceReport(spec.name)
        reports.append(report)
        try:
            if spec.kind == "stdin":
                if stdin_data is None:
                    stdin_data = read_stdin() if read_stdin is not None else b""
                parsed = parse_bytes(stdin_data, source=spec.name, fmt=fmt)
            elif spec.kind == "url":
                fetched = fetch(spec.name, timeout=feed_timeout)
                parsed = parse_bytes(fetched.data, source=spec.name, fmt=fmt, base_url=fetched.url,
                                     content_type=fetched.content_type)
            elif spec.kind == "file" and spec.path is not None:
                parsed = parse_bytes(_read(spec.path), source=spec.name, fmt=fmt)
            elif spec.kind == "empty-folder":
                raise DigestError(f"{spec.name}: no article files ({', '.join(ARTICLE_SUFFIXES)}) in this folder")
            else:
                raise DigestError(f"{spec.name}: no such file or folder")
            report.format = parsed.format
            report.warnings = parsed.warnings + _shortened(parsed, spec.name, outlet_names or {})
            report.skipped = parsed.skipped
            articles = _unique([finish(a, published=published, topics=topics, rules=rules,
                                       outlet_names=outlet_names, feed_title=parsed.feed_title)
                                for a in parsed.articles], report)
            try:
                _store(store, copy.deepcopy(articles), report, now, merge_topics=parsed.format != "json")
            except IntegrityError:
                # Another ingest stored one of these articles between our look and our insert (PostgreSQL;
                # SQLite's writer lock serializes ingests). Once more, from the untouched articles: now it is
                # found, and compared and updated instead.
                _store(store, articles, report, now, merge_topics=parsed.format != "json")
        except DigestError as exc:
            _fail(report, str(exc))
        except SQLAlchemyError as exc:
            _fail(report, f"{spec.name}: the store refused it ({type(exc).__name__}: {str(exc).splitlines()[0]})")
    return IngestReport(reports)


def _shortened(parsed: Parsed, source: str, outlet_names: Mapping[str, str]) -> list[str]:
    """A warning when the outlet is shorter than the feed's title and no ``outlet_names`` entry chose it."""
    title = parsed.feed_title
    outlet = next((a.outlet for a in parsed.articles if a.outlet), None)
    if not title or not outlet or outlet == title or normalize_topic(title) in outlet_names \
            or normalize_topic(outlet) in outlet_names:
        return []
    return [(f"{source}: outlet {outlet!r} from the feed title {title!r} "
             "(outlet_names in digest.toml chooses another)")]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DigestError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _unique(articles: list[Article], report: SourceReport) -> list[Article]:
    seen: dict[str, Article] = {}
    for article in articles:
        if article.id in seen:
            report.warnings.append(f"{report.source}: {article.title[:60]!r} appears twice; kept the first")
            continue
        seen[article.id] = article
    return list(seen.values())


def _store(store: Store, articles: list[Article], report: SourceReport, now: datetime, *,
           merge_topics: bool) -> None:
    # Topics are editorial labels that accumulate: re-reading a file without its --topic must not strip the
    # section it was filed under. A JSON import is the exception: its topics are authoritative, so an edited
    # export is how topics are removed.
    outcomes = []
    with store.session() as session:  # one transaction: all of this source, or none of it
        for article in articles:
            outcomes.append(upsert_article(session, article, now=now, merge_topics=merge_topics))
    report.new = outcomes.count("new")
    report.updated = outcomes.count("updated")
    report.unchanged = outcomes.count("unchanged")
    report.article_ids = [a.id for a in articles]


def _fail(report: SourceReport, reason: str) -> None:
    report.status = "failed"
    report.error = reason
    report.new = report.updated = report.unchanged = 0
    report.article_ids = []
    report.skipped = []
