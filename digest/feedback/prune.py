"""Retention: remove old events and delivery rows, keeping what statistics need in ``edition_totals``.

An edition is pruned whole, once its cut-off is older than the retention age: its rows' counts are folded into
its totals row first (same transaction), so `stats` shows the same numbers before and after. Pruning whole
editions rather than row by row keeps "unique opens" exact: a reader whose first open was pruned and second kept
would otherwise be counted twice. Events tied to no edition are pruned by their own age.

An edition's send batches (``send_batches``) go with its delivery rows: they only say which rows a worker
claims together, and nothing reads them once the rows are gone. An edition a send is still working on is left
whole, however old: its delivery rows are the outbox exactly-once rests on, and its batches are what workers
claim next.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from digest.feedback.stats import live_counts, merge_counts
from digest.send.subject_test import HELD
from digest.store.tables import DeliveryRow, EditionRow, EditionTotalsRow, EventRow, SendBatchRow

# Delivery rows a send has yet to settle: pending, claimed by a worker, or held for a subject test's winner.
_UNSETTLED = ("pending", "sending", HELD)


@dataclass
class PruneReport:
    cutoff: datetime
    dry_run: bool
    editions: int = 0
    events: int = 0
    deliveries: int = 0
    batches: int = 0  # send_batches rows

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cutoff"] = self.cutoff.isoformat()
        return data


def prune(session: Session, *, older_than_days: int, now: datetime | None = None,
          dry_run: bool = False) -> PruneReport:
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    now = now or datetime.now(UTC)
    report = PruneReport(cutoff=now - timedelta(days=older_than_days), dry_run=dry_run)
    # Batches count as rows of their own: earlier versions pruned deliveries and left the batches behind.
    with_rows = select(DeliveryRow.edition_id).union(
        select(EventRow.edition_id).where(EventRow.edition_id.is_not(None)),
        select(SendBatchRow.edition_id)).subquery()
    still_sending = or_(EditionRow.status == "sending", EditionRow.id.in_(
        select(DeliveryRow.edition_id).where(DeliveryRow.status.in_(_UNSETTLED))))
    old = list(session.scalars(select(EditionRow.id).where(
        EditionRow.cutoff_at < report.cutoff, EditionRow.id.in_(select(with_rows.c[0])), ~still_sending)
        .order_by(EditionRow.id)))
    for edition_id in old:
        report.editions += 1
        report.events += _count(session, EventRow, EventRow.edition_id == edition_id)
        report.deliveries += _count(session, DeliveryRow, DeliveryRow.edition_id == edition_id)
        report.batches += _count(session, SendBatchRow, SendBatchRow.edition_id == edition_id)
        if dry_run:
            continue
        totals = session.get(EditionTotalsRow, edition_id)
        if totals is None:
            totals = EditionTotalsRow(edition_id=edition_id, counts={})
            session.add(totals)
        # A new dict, not an in-place update: the JSON column only notices reassignment.
        totals.counts = merge_counts(totals.counts or {}, live_counts(session, edition_id))
        session.execute(delete(EventRow).where(EventRow.edition_id == edition_id))
        session.execute(delete(DeliveryRow).where(DeliveryRow.edition_id == edition_id))
        session.execute(delete(SendBatchRow).where(SendBatchRow.edition_id == edition_id))
    orphan = (EventRow.occurred_at < report.cutoff) & or_(
        EventRow.edition_id.is_(None), EventRow.edition_id.not_in(select(EditionRow.id)))
    report.events += _count(session, EventRow, orphan)
    if not dry_run:
        session.execute(delete(EventRow).where(orphan))
    return report


def _count(session: Session, table: Any, condition: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(table).where(condition)) or 0)
