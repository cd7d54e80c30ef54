"""What a list has already delivered (``edition_articles``): recorded when a delivery is, read so that no article
comes twice and no story is told again.

The one writer is ``record_sent_articles`` (called by ``digest.send.record``); the readers are the edition's
pool (``lifecycle``) and its ranking (``selection``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.errors import ConfigError
from digest.models import Article
from digest.store.articles import list_articles
from digest.store.tables import EditionArticleRow, EditionRow


def record_sent_articles(session: Session, edition: EditionRow, article_ids: Iterable[str]) -> None:
    """Remember what the edition delivered, so no later edition of the list offers it again (idempotent)."""
    ids = sorted(set(article_ids))
    if not ids:
        return
    rows = [{"edition_id": edition.id, "article_id": i, "list_id": edition.list_id} for i in ids]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(EditionArticleRow).values(rows).on_conflict_do_nothing())
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(EditionArticleRow).values(rows).on_conflict_do_nothing())
    else:  # pragma: no cover - the store supports only the two above
        raise ConfigError(f"database_url: unsupported database {dialect!r}")


def sent_by_other_editions(session: Session, edition: EditionRow) -> set[str]:
    """Article ids this list delivered in any other edition: never candidates again."""
    return set(session.scalars(
        select(EditionArticleRow.article_id)
        .where(EditionArticleRow.list_id == edition.list_id, EditionArticleRow.edition_id != edition.id)))


@dataclass(frozen=True)
class StoryMemory:
    """What a list's recent editions told: ``told`` the articles they delivered, ``context`` the rest of their
    frozen pools (among them the other outlets' versions of a told story, left out then as its duplicates)."""

    told: list[Article]
    context: list[Article]


def remembered_stories(session: Session, edition: EditionRow, days: int) -> StoryMemory:
    """The stories a reader of this edition has already been told: what the list delivered in its editions of
    the ``days`` dates before this one. Only earlier dates count, so a later edition going out first (an
    eastern time zone is already on tomorrow) does not change this one."""
    if days <= 0:
        return StoryMemory([], [])
    recent = session.scalars(select(EditionRow).where(
        EditionRow.list_id == edition.list_id, EditionRow.id != edition.id,
        EditionRow.date >= edition.date - timedelta(days=days), EditionRow.date < edition.date)).all()
    if not recent:
        return StoryMemory([], [])
    told_ids = set(session.scalars(select(EditionArticleRow.article_id).where(
        EditionArticleRow.edition_id.in_([e.id for e in recent]))))
    if not told_ids:
        return StoryMemory([], [])
    pooled = {str(article_id) for e in recent for article_id in (e.pool or [])} - told_ids
    told = list_articles(session, ids=sorted(told_ids))
    context = list_articles(session, ids=sorted(pooled)) if pooled else []
    return StoryMemory(told, context)
