"""Planning a send: which subscribers get which variant, each variant rendered once, one delivery row each.

Subscribers are read a chunk at a time by id, and each chunk is written (or, for a dry run, only counted)
before the next is read, so memory holds one chunk plus one entry per distinct preference profile and
language, however large the list. Subscribers that already have a delivery row for the edition are left alone: a resumed send
plans only the newcomers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from digest import editions
from digest.audience.lists import effective_language as list_language
from digest.audience.subscribers import receives_editions
from digest.config import Settings
from digest.i18n.languages import effective_language
from digest.render.edition import RenderedEdition, render_selection
from digest.send import outbox
from digest.send.backends.base import Content
from digest.store.tables import DeliveryRow, EditionRow, MailingListRow, SubscriberRow, VariantRow

CHUNK = 1000
SubscriberFilter = Callable[[SubscriberRow], bool]


@dataclass
class PlannedVariant:
    variant_id: int
    subject: str


@dataclass
class Planned:
    """One chunk's outcome: rows written (or that would be), by status."""

    pending: list[tuple[SubscriberRow, int]] = field(default_factory=list)  # (subscriber, variant id)
    skipped: list[tuple[SubscriberRow, str]] = field(default_factory=list)  # (subscriber, reason)
    last_id: int = 0
    done: bool = False


def rendered_from_variant(variant: VariantRow, list_row: MailingListRow, edition: EditionRow) -> RenderedEdition:
    """The stored render of a variant, as render's message builder takes it (a resumed run renders nothing)."""
    html = variant.html or ""
    return RenderedEdition(
        subject=variant.subject or "", preheader=variant.preheader or "", mjml="", html=html,
        text=variant.text or "", trimmed=[], article_count=len(variant.article_ids or []),
        size_bytes=len(html.encode("utf-8")), key=variant.render_hash or f"variant-{variant.id}",
        article_ids=tuple(variant.article_ids or []), list_name=list_row.name, edition_date=edition.date,
        # The variant's readers' language, stored with it: the greeting of a reader without a name.
        language=effective_language(variant.language, list_row.language),
    )


def content_for(session: Session, edition_id: int, variant_id: int) -> Content:
    variant = session.get(VariantRow, variant_id)
    edition = session.get(EditionRow, edition_id)
    if variant is None or edition is None:
        raise LookupError(f"variant {variant_id} of edition {edition_id} is gone")
    list_row = session.get(MailingListRow, edition.list_id)
    assert list_row is not None
    return Content(edition_id=edition_id, variant_id=variant_id, list_row=list_row,
                   rendered=rendered_from_variant(variant, list_row, edition))


class Planner:
    def __init__(self, settings: Settings, edition_id: int, now: datetime, *,
                 subscriber_filter: SubscriberFilter | None = None) -> None:
        self.settings = settings
        self.edition_id = edition_id
        self.now = now
        self.subscriber_filter = subscriber_filter
        self._ranker: Any = None
        self._clicks: Any = None
        self._profiles: dict[tuple[tuple[str, ...], str], PlannedVariant | None] = {}
        self.variants: dict[int, PlannedVariant] = {}

    # --- variants -----------------------------------------------------------------------------------------

    def _variant(self, session: Session, edition: EditionRow, list_row: MailingListRow,
                 profile: tuple[str, ...], language: str) -> PlannedVariant | None:
        """The variant for a preference profile in a language, selected and rendered on first need (None:
        nothing to send)."""
        if (profile, language) in self._profiles:
            return self._profiles[(profile, language)]
        if self._ranker is None:
            self._ranker = editions.ranker_for(session, self.settings, edition)
            self._clicks = editions.engagement_for(session, self.settings, edition)
        selection = editions.stamp(self._ranker.select(profile, engagement=self._clicks, with_dropped=False),
                                   list_row, edition, language)
        planned: PlannedVariant | None = None
        if selection.items:
            variant = editions.get_or_create_variant(session, edition, selection)
            if variant.html is None or variant.rendered_at is None:
                self.render(session, variant, list_row, edition, selection)
            planned = self.variants.get(variant.id) or PlannedVariant(variant.id, variant.subject or "")
            self.variants[variant.id] = planned
        self._profiles[(profile, language)] = planned
        return planned

    def _language(self, subscriber_language: str | None, list_row: MailingListRow) -> str:
        return effective_language(subscriber_language, list_language(self.settings, list_row))

    def render(self, session: Session, variant: VariantRow, list_row: MailingListRow, edition: EditionRow,
               selection: Any) -> None:
        rendered = render_selection(self.settings, list_row, edition.date, selection)
        variant.subject = rendered.subject
        variant.preheader = rendered.preheader
        variant.html = rendered.html
        variant.text = rendered.text
        variant.render_hash = rendered.key[:64]
        variant.rendered_at = self.now
        # What the variant shows after the size guard: what record_sent_articles will record.
        variant.article_ids = list(rendered.article_ids)
        session.flush()

    # --- subscribers --------------------------------------------------------------------------------------

    def plan_chunk(self, session: Session, after_id: int, *, write: bool, limit: int = CHUNK) -> Planned:
        edition = session.get(EditionRow, self.edition_id)
        assert edition is not None
        list_row = session.get(MailingListRow, edition.list_id)
        assert list_row is not None
        has_row = exists().where(DeliveryRow.edition_id == self.edition_id,
                                 DeliveryRow.subscriber_id == SubscriberRow.id)
        subscribers = list(session.scalars(
            select(SubscriberRow)
            .where(SubscriberRow.list_id == list_row.id, receives_editions(), SubscriberRow.id > after_id, ~has_row)
            .order_by(SubscriberRow.id).limit(limit)))
        out = Planned(last_id=subscribers[-1].id if subscribers else after_id, done=len(subscribers) < limit)
        if self.subscriber_filter is not None:
            subscribers = [s for s in subscribers if self.subscriber_filter(s)]
        suppressed = outbox.suppressed_emails(session, [s.email for s in subscribers])
        rows: list[dict[str, Any]] = []
        for sub in subscribers:
            if sub.email in suppressed:
                variant, reason = None, "address is suppressed"
            else:
                variant = self._variant(session, edition, list_row,
                                        editions.effective_preferences(sub.topics, list_row.topics),
                                        self._language(sub.language, list_row))
                reason = "no article for this subscriber's selection"
            if variant is not None:
                out.pending.append((sub, variant.variant_id))
                rows.append(self._row(sub, variant.variant_id, "pending", None))
            else:
                out.skipped.append((sub, reason))
                rows.append(self._row(sub, None, "skipped", reason))
        if write:
            outbox.insert_deliveries(session, rows)
        return out

    def _row(self, sub: SubscriberRow, variant_id: int | None, status: str, error: str | None) -> dict[str, Any]:
        return {"edition_id": self.edition_id, "subscriber_id": sub.id, "variant_id": variant_id,
                "email": sub.email, "status": status, "error": error, "attempt": 0,
                "created_at": self.now, "updated_at": self.now}

    def reassign(self, session: Session, variant_ids: list[int], *, chunk: int = 5000) -> int:
        """Move the pending deliveries of ``variant_ids`` to the variants their subscribers get now."""
        edition = session.get(EditionRow, self.edition_id)
        assert edition is not None
        list_row = session.get(MailingListRow, edition.list_id)
        assert list_row is not None
        moved = 0
        after = 0
        while True:
            rows = session.execute(
                select(DeliveryRow.id, SubscriberRow.topics, SubscriberRow.language)
                .join(SubscriberRow, SubscriberRow.id == DeliveryRow.subscriber_id)
                .where(DeliveryRow.edition_id == self.edition_id, DeliveryRow.status == "pending",
                       DeliveryRow.variant_id.in_(variant_ids), DeliveryRow.id > after)
                .order_by(DeliveryRow.id).limit(chunk)).all()
            if not rows:
                return moved
            after = rows[-1][0]
            targets: dict[int | None, list[int]] = {}
            for delivery_id, topics, language in rows:
                variant = self._variant(session, edition, list_row,
                                        editions.effective_preferences(topics, list_row.topics),
                                        self._language(language, list_row))
                targets.setdefault(variant.variant_id if variant else None, []).append(delivery_id)
            for variant_id, ids in targets.items():
                if variant_id is None:
                    outbox.set_status(session, ids, "skipped", self.now, expect="pending",
                                      error="no article left for this subscriber's selection")
                else:
                    # Only rows still pending move: a row a running send claimed meanwhile went out as it was.
                    result = session.execute(
                        update(DeliveryRow).where(DeliveryRow.id.in_(ids), DeliveryRow.status == "pending",
                                                  DeliveryRow.variant_id.in_(variant_ids))
                        .values(variant_id=variant_id, updated_at=self.now)
                        .execution_options(synchronize_session=False))
                    moved += int(getattr(result, "rowcount", 0) or 0)
