"""Send batches and who holds them: planning cuts them ``planned`` and opens them once every row is written;
a worker claims an open batch (``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so concurrent workers never wait for nor take the same one), delivers it, and marks it done.

A worker proves it is alive with a lease named ``send:worker:<holder>`` (`digest.schedule.lease`), renewed in the
background. A batch whose holder's lease has expired, or whose holder is a process on this host that no longer
exists, belongs to a dead worker: `digest.send.recover` takes it over.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from digest.schedule.lease import dead_here
from digest.store.tables import DeliveryRow, EditionRow, LeaseRow, MailingListRow, SendBatchRow

WORKER_LEASE = timedelta(seconds=60)


def worker_lease_name(holder: str) -> str:
    return f"send:worker:{holder}"


def new_batch(session: Session, edition_id: int, variant_id: int | None, *, status: str = "open",
              holder: str | None = None) -> int:
    """A send batch: ``open`` for any worker, ``planned`` (planning not finished: nobody may claim it yet, see
    `open_planned`), or ``claimed`` by ``holder`` from the start."""
    row = SendBatchRow(edition_id=edition_id, variant_id=variant_id, status=status, holder=holder,
                       claimed_at=datetime.now(UTC) if status == "claimed" else None)
    session.add(row)
    session.flush()
    return int(row.id)


def open_planned(session: Session, edition_id: int) -> int:
    """Planning is done (and a subject test has drawn its sample): the edition's planned batches open."""
    result = session.execute(update(SendBatchRow)
                             .where(SendBatchRow.edition_id == edition_id, SendBatchRow.status == "planned")
                             .values(status="open", holder=None).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def _open_batches(edition_ids: Sequence[int] | None, list_name: str | None) -> Any:
    """The open batches of ``edition_ids`` (or of every edition that is sending, of ``list_name`` if given), oldest
    first: the order workers claim them in."""
    query = select(SendBatchRow.id).where(SendBatchRow.status == "open")
    if edition_ids is not None:
        query = query.where(SendBatchRow.edition_id.in_(list(edition_ids)))
    else:
        sending = select(EditionRow.id).where(EditionRow.status == "sending")
        if list_name is not None:
            sending = sending.join(MailingListRow, MailingListRow.id == EditionRow.list_id).where(
                MailingListRow.name == list_name)
        query = query.where(SendBatchRow.edition_id.in_(sending))
    return query.order_by(SendBatchRow.id)


def next_batch(session: Session, *, edition_ids: Sequence[int] | None = None,
               list_name: str | None = None) -> tuple[int, int] | None:
    """The batch `claim_batch` would claim now, without claiming it: (batch id, edition id), or None. Another
    worker may take it first: a guess, for preparing work ahead."""
    row = session.execute(_open_batches(edition_ids, list_name).add_columns(SendBatchRow.edition_id)
                          .limit(1)).first()
    return None if row is None else (int(row[0]), int(row[1]))


def claim_batch(session: Session, holder: str, *, edition_ids: Sequence[int] | None = None,
                list_name: str | None = None) -> tuple[int, int] | None:
    """Claim the oldest open batch of ``edition_ids`` (or of every edition that is sending, of ``list_name`` if
    given) for ``holder``: (batch id, edition id), or None when there is none left to claim."""
    query = _open_batches(edition_ids, list_name)
    # SKIP LOCKED: a batch another worker is claiming this instant is passed over, not waited for. (SQLite has
    # no row locks; its BEGIN IMMEDIATE makes the whole claim one writer at a time.)
    candidate = query.limit(1).with_for_update(skip_locked=True).scalar_subquery()
    row = session.execute(
        update(SendBatchRow).where(SendBatchRow.id == candidate, SendBatchRow.status == "open")
        .values(status="claimed", holder=holder, claimed_at=datetime.now(UTC))
        .returning(SendBatchRow.id, SendBatchRow.edition_id)
        .execution_options(synchronize_session=False)).first()
    return (int(row[0]), int(row[1])) if row is not None else None


def finish_batch(session: Session, batch_id: int, holder: str, *, done: bool) -> None:
    """Hand a claimed batch back: ``done`` when nothing of it is left pending (its holder stays, to say who sent
    it), else ``open`` for another worker."""
    session.execute(update(SendBatchRow).where(SendBatchRow.id == batch_id, SendBatchRow.holder == holder)
                    .values(status="done" if done else "open", holder=holder if done else None)
                    .execution_options(synchronize_session=False))


def reopen_batches(session: Session, edition_id: int) -> int:
    """Batches marked done that hold pending rows again (--retry-failed, an in-doubt resend, a cancelled
    scheduled request) are opened for claiming."""
    has_pending = exists().where(DeliveryRow.work_batch == SendBatchRow.id, DeliveryRow.status == "pending")
    result = session.execute(update(SendBatchRow)
                             .where(SendBatchRow.edition_id == edition_id, SendBatchRow.status == "done", has_pending)
                             .values(status="open", holder=None).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def holder_gone(session: Session, holder: str | None, now: datetime | None = None) -> bool:
    """True when the worker ``holder`` is dead: its lease lapsed, or it was a process here that is gone."""
    if holder is None:
        return True
    if dead_here(holder):
        return True
    lease = session.get(LeaseRow, worker_lease_name(holder))
    return lease is None or lease.expires_at < (now or datetime.now(UTC))


def sweep_dead_workers(session: Session, now: datetime | None = None) -> int:
    """Delete the leases of workers that are gone (killed: nobody released them), once their batches are taken
    over; a lease is only a liveness signal, and a dead one would otherwise stay in the table for good."""
    prefix = worker_lease_name("")
    gone = [row.name for row in session.scalars(select(LeaseRow).where(LeaseRow.name.startswith(prefix)))
            if holder_gone(session, row.name[len(prefix):], now)]
    if gone:
        session.execute(delete(LeaseRow).where(LeaseRow.name.in_(gone)))
    return len(gone)
