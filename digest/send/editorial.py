"""Editorial control over editions: list and inspect them, cancel what is not yet sent, retract an article."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from digest import editions
from digest.app import App
from digest.errors import NotFound, SendError
from digest.send import outbox, subject_test
from digest.send.plan import Planner
from digest.store.articles import get_article
from digest.store.tables import (
    ArticleRow,
    DeliveryRow,
    EditionArticleRow,
    EditionRow,
    MailingListRow,
    VariantRow,
)

OPEN_STATUSES = ("draft", "approved", "sending")


def _edition(session: Any, edition_id: int) -> EditionRow:
    edition = session.get(EditionRow, edition_id)
    if edition is None:
        raise NotFound(f"no edition with id {edition_id} (see `digest editions ls`)")
    return edition


def list_editions(app: App, list_name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    with app.store.session() as s:
        query = (select(EditionRow, MailingListRow.name).join(MailingListRow, MailingListRow.id == EditionRow.list_id)
                 .order_by(EditionRow.date.desc(), EditionRow.id.desc()).limit(limit))
        if list_name:
            query = query.where(MailingListRow.name == list_name)
        out = []
        for edition, name in s.execute(query).all():
            counts = outbox.counts(s, edition.id)
            variants = s.scalar(select(func.count()).select_from(VariantRow).where(VariantRow.edition_id == edition.id))
            out.append({"id": edition.id, "list": name, "date": edition.date, "status": edition.status,
                        "frozen_at": edition.frozen_at, "variants": variants or 0,
                        "deliveries": sum(counts.values()), "counts": counts})
        return out


def show_edition(app: App, edition_id: int, *, limit: int = 200) -> dict[str, Any]:
    with app.store.session() as s:
        edition = _edition(s, edition_id)
        list_row = s.get(MailingListRow, edition.list_id)
        counts = outbox.counts(s, edition_id)
        per_variant = dict(s.execute(select(DeliveryRow.variant_id, func.count()).where(
            DeliveryRow.edition_id == edition_id).group_by(DeliveryRow.variant_id)).all())
        variants = []
        article_ids: list[str] = []
        for v in s.scalars(select(VariantRow).where(VariantRow.edition_id == edition_id).order_by(VariantRow.id)):
            variants.append({"id": v.id, "key": v.key, "subject": v.subject, "article_ids": list(v.article_ids or []),
                             "subscribers": per_variant.get(v.id, 0), "rendered_at": v.rendered_at,
                             "html_bytes": len((v.html or "").encode("utf-8"))})
            article_ids += [a for a in v.article_ids or [] if a not in article_ids]
        preview = None
        if not variants and edition.status in ("draft", "approved"):
            # Nothing planned yet (say, an edition built for approval): show what it would carry, as the
            # list's own selection from its window or frozen pool, so an editor can judge it before approving.
            selection = editions.select_for(s, app.settings, edition, None)
            article_ids = list(selection.article_ids)
            preview = {"article_ids": article_ids, "thin": selection.thin,
                       "render": f"digest build --list {list_row.name if list_row else ''} --date {edition.date}"}
        sent_ids = set(s.scalars(select(EditionArticleRow.article_id).where(EditionArticleRow.edition_id == edition_id)))
        found = s.execute(select(ArticleRow.id, ArticleRow.title, ArticleRow.retracted_at)
                          .where(ArticleRow.id.in_(article_ids))).all() if article_ids else []
        titles = {aid: title for aid, title, _ in found}
        retracted = {aid for aid, _, retracted_at in found if retracted_at is not None}

        def rows(status: str) -> list[dict[str, Any]]:
            q = (select(DeliveryRow).where(DeliveryRow.edition_id == edition_id, DeliveryRow.status == status)
                 .order_by(DeliveryRow.id).limit(limit))
            return [{"delivery_id": d.id, "subscriber_id": d.subscriber_id, "email": d.email, "batch_id": d.batch_id,
                     "attempt": d.attempt, "error": d.error, "updated_at": d.updated_at} for d in s.scalars(q)]

        return {
            "id": edition.id, "list": list_row.name if list_row else None, "date": edition.date,
            "status": edition.status, "window_start": edition.window_start, "cutoff_at": edition.cutoff_at,
            "frozen_at": edition.frozen_at, "approved_at": edition.approved_at, "note": edition.note,
            "editor_note": edition.editor_note,
            "counts": counts, "deliveries": sum(counts.values()), "variants": variants, "preview": preview,
            "articles": [{"id": a, "title": titles.get(a), "delivered": a in sent_ids, "retracted": a in retracted}
                         for a in article_ids],
            "in_doubt": rows("in_doubt"), "failed": rows("failed"),
            "subject_test": subject_test.report(s, edition_id),
        }


def cancel_edition(app: App, edition_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Stop every delivery not yet made: pending → cancelled (a running send stops at its next batch)."""
    now = now or datetime.now(UTC)
    with app.store.session() as s:
        edition = _edition(s, edition_id)
        if edition.status in ("sent", "skipped"):
            raise SendError(f"edition {edition_id} is already {edition.status}: nothing left to cancel")
        cancelled = outbox.cancel_pending(s, edition_id, now) + subject_test.cancel_held(s, edition_id, now)
        edition.status = "cancelled"
        edition.note = f"cancelled at {now:%Y-%m-%d %H:%M} UTC"
        counts = outbox.counts(s, edition_id)
    return {"edition_id": edition_id, "cancelled": cancelled, "counts": counts}


@dataclass
class RetractOutcome:
    article_id: str
    retracted_at: datetime
    editions: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"article_id": self.article_id, "retracted_at": self.retracted_at, "editions": self.editions}


def retract_article(app: App, article_id: str, now: datetime | None = None) -> RetractOutcome:
    """Take an article out of every edition not yet fully delivered.

    Pending deliveries of a variant that shows the article move to a variant selected again without it (and
    rendered once); deliveries already made are history. Editions not yet planned need nothing: a retracted
    article is never a candidate again.
    """
    now = now or datetime.now(UTC)
    with app.store.session() as s:
        row = get_article(s, article_id)
        row.retracted_at = row.retracted_at or now
        retracted_at = row.retracted_at
        open_editions = list(s.scalars(select(EditionRow.id).where(EditionRow.status.in_(OPEN_STATUSES))))
    outcome = RetractOutcome(article_id, retracted_at)
    for edition_id in open_editions:
        with app.store.session() as s:
            affected = [v.id for v in s.scalars(select(VariantRow).where(VariantRow.edition_id == edition_id))
                        if article_id in (v.article_ids or [])]
            if not affected:
                continue
            planner = Planner(app.settings, edition_id, now)
            moved = planner.reassign(s, affected)
            outcome.editions.append({"edition_id": edition_id, "variants_affected": affected,
                                     "deliveries_moved": moved, "new_variants": sorted(planner.variants)})
    return outcome

