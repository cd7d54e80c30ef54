"""Articles in the store: upsert with new/updated/unchanged, and conversion between rows and `Article`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.errors import NotFound
from digest.models import Article, Section
from digest.store.tables import ArticleRow

UpsertOutcome = Literal["new", "updated", "unchanged"]


def row_to_article(row: ArticleRow) -> Article:
    return Article(
        id=row.id, title=row.title, outlet=row.outlet, author=row.author, dateline=row.dateline,
        edition=row.edition, published_at=row.published_at, url=row.url, language=row.language,
        topics=list(row.topics or []),
        summary=row.summary, quick_looks=list(row.quick_looks or []), quick_looks_title=row.quick_looks_title,
        quick_looks_derived=row.quick_looks_derived, deep_look_title=row.deep_look_title,
        sections=[Section(s.get("heading"), list(s.get("paragraphs") or [])) for s in row.sections or []],
        image_url=row.image_url, image_alt=row.image_alt, image_width=row.image_width,
        image_height=row.image_height, source=row.source, pinned=row.pinned,
    )


def upsert_article(session: Session, article: Article, *, now: datetime | None = None,
                   merge_topics: bool = False) -> UpsertOutcome:
    """Insert or update by id. An article that came without a date keeps the time it was first seen, so
    re-ingesting an undated Newslooks file does not move it to "now". With ``merge_topics``, a stored article
    keeps its topics and gains the new ones (``article.topics`` is set to the union); without it, the article's
    topics replace them."""
    now = now or datetime.now(UTC)
    row = session.get(ArticleRow, article.id)
    if row is not None and merge_topics:
        article.topics = list(dict.fromkeys([*(row.topics or []), *article.topics]))
    if row is None:
        if article.published_at is None:
            article.published_at = now
        session.add(ArticleRow(
            id=article.id, content_hash=article.content_hash(), first_seen_at=now, updated_at=now,
            **_fields(article),
        ))
        return "new"
    if article.published_at is None:
        article.published_at = row.published_at
    digest_hash = article.content_hash()
    if digest_hash == row.content_hash:
        return "unchanged"
    for name, value in _fields(article).items():
        if name == "pinned":  # pinning is editorial state, not content: re-ingest never clears it
            continue
        setattr(row, name, value)
    row.content_hash = digest_hash
    row.updated_at = now
    return "updated"


def _fields(article: Article) -> dict[str, object]:
    data = asdict(article)
    data.pop("id")
    data["sections"] = [asdict(s) if isinstance(s, Section) else s for s in article.sections]
    return data


def get_article(session: Session, article_id: str) -> ArticleRow:
    row = session.get(ArticleRow, article_id)
    if row is None:
        raise NotFound(f"no article with id {article_id!r}")
    return row


def list_articles(session: Session, *, since: datetime | None = None, until: datetime | None = None,
                  topic: str | None = None, include_retracted: bool = False,
                  ids: Sequence[str] | None = None) -> list[Article]:
    query = select(ArticleRow).order_by(ArticleRow.published_at.desc(), ArticleRow.id)
    if since is not None:
        query = query.where(ArticleRow.published_at >= since)
    if until is not None:
        query = query.where(ArticleRow.published_at < until)
    if not include_retracted:
        query = query.where(ArticleRow.retracted_at.is_(None))
    if ids is not None:
        query = query.where(ArticleRow.id.in_(list(ids)))
    articles = [row_to_article(r) for r in session.scalars(query)]
    if topic:
        articles = [a for a in articles if topic in a.topics]
    return articles
