"""Recording outcomes: a batch's rows become ``sent``, ``failed``, ``in_doubt`` or go back to ``pending``, and an
edition's status is settled once nothing of it is left to send.

A request's ``sent`` outcome is deferred and committed together with the next request's claim (one commit per
request instead of two); `flush` commits it before any sleep and at the end, so no finished request stays marked
``sending`` while this process waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest import editions
from digest.send import outbox, subject_test
from digest.send.summary import SendSummary
from digest.store.db import Store
from digest.store.tables import DeliveryRow, EditionRow, VariantRow


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Deferred:
    ids: list[int]
    batch_id: str
    message_id: str | None
    edition_id: int
    variant_id: int


class Recorder:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.deferred: _Deferred | None = None
        self.recorded_variants: set[tuple[int, int]] = set()

    def defer_sent(self, ids: list[int], batch_id: str, message_id: str | None, edition_id: int,
                   variant_id: int) -> None:
        self.deferred = _Deferred(ids, batch_id, message_id, edition_id, variant_id)

    def apply(self, session: Session) -> None:
        """Commit the deferred ``sent`` outcome inside the caller's transaction."""
        deferred, self.deferred = self.deferred, None
        if deferred is None:
            return
        # The whole request: its rejected rows (if any) were marked failed before this outcome was deferred.
        outbox.set_status(session, deferred.ids, "sent", utcnow(), expect="sending", batch_id=deferred.batch_id,
                          provider_message_id=deferred.message_id, in_batch=deferred.batch_id)
        key = (deferred.edition_id, deferred.variant_id)
        if key not in self.recorded_variants:
            edition = session.get(EditionRow, deferred.edition_id)
            variant = session.get(VariantRow, deferred.variant_id)
            if edition is not None and variant is not None:
                editions.record_sent_articles(session, edition, variant.article_ids or [])
            self.recorded_variants.add(key)

    def flush(self) -> None:
        if self.deferred is not None:
            with self.store.session() as s:
                self.apply(s)

    def release(self, ids: list[int], batch_id: str) -> None:
        """The provider did not take the request ``batch_id``: its rows go back to pending."""
        with self.store.session() as s:
            self.apply(s)
            outbox.set_status(s, ids, "pending", utcnow(), expect="sending", batch_id=None, in_batch=batch_id)

    def mark(self, ids: list[int], batch_id: str, status: str, error: str, *, whole: bool = True) -> None:
        """Rows of the request ``batch_id`` get ``status``: all of them, or (``whole=False``) only ``ids``."""
        with self.store.session() as s:
            self.apply(s)
            outbox.set_status(s, ids, status, utcnow(), expect="sending", batch_id=batch_id, error=error,
                              in_batch=batch_id if whole else None)


def settle_edition(session: Session, edition_id: int) -> tuple[EditionRow, dict[str, int]]:
    """Once nothing is pending or sending, a sending edition is ``sent``, or ``failed`` when every delivery that
    was attempted failed (none sent, none in doubt). Deliveries a subject test holds for its winner mean it is
    not finished. Returns the edition and its delivery counts."""
    edition = session.get(EditionRow, edition_id)
    assert edition is not None
    totals = outbox.counts(session, edition_id)
    if (edition.status not in ("cancelled", "skipped") and totals
            and not totals.get("pending") and not totals.get("sending") and not totals.get(subject_test.HELD)):
        delivered = totals.get("sent", 0) + totals.get("in_doubt", 0)
        edition.status = "failed" if totals.get("failed") and not delivered else "sent"
    return edition, totals


def finish(store: Store, edition_id: int, summary: SendSummary, *, stopped: bool) -> None:
    with store.session() as s:
        if summary.status == "skipped":
            edition = s.get(EditionRow, edition_id)
            assert edition is not None
            totals = outbox.counts(s, edition_id)
        else:
            edition, totals = settle_edition(s, edition_id)
        summary.status = edition.status
        summary.totals = totals
        summary.recipients = sum(totals.values())
        summary.in_doubt = totals.get("in_doubt", 0)
        summary.pending = totals.get("pending", 0) + totals.get("sending", 0)
        summary.cancelled = totals.get("cancelled", 0)
        summary.variants = len(variants_used(s, edition_id))
        summary.stopped = stopped


def variants_used(session: Any, edition_id: int) -> list[int]:
    return [v for v in session.scalars(select(DeliveryRow.variant_id).where(DeliveryRow.edition_id == edition_id)
                                       .group_by(DeliveryRow.variant_id)) if v is not None]
