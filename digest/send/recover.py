"""In doubt: resolving the rows a dead process left ``sending``.

Between the provider accepting a request and our commit of ``sent`` lies a window no one can close: if the
process dies there, its rows stay ``sending``. At most one request (or one SMTP message) is in that state per
dead worker. A SendGrid request sent with ``send_at`` a little ahead under its own batch id is cancelled through
the Scheduled Sends API and its rows sent again; otherwise the rows become ``in_doubt`` and the ``in_doubt_rule``
setting decides once for all: ``assume_sent`` (the default: never a duplicate) leaves them, ``resend`` (never a
loss) sends them again. Summaries and `digest editions show` name every in-doubt delivery.

Whose rows are these? A send batch claimed by a worker whose lease lapsed (or a process on this host that is
gone) is taken over, atomically, by the one process that recovers it; its other rows go back to other workers.
"""

from __future__ import annotations

from sqlalchemy import select, update

from digest.config import Settings
from digest.send import outbox
from digest.send.backends.base import Backend, ProviderError
from digest.send.claim import holder_gone, reopen_batches, sweep_dead_workers
from digest.send.deliver import CANCEL_MARGIN_SECONDS
from digest.send.record import utcnow
from digest.send.summary import InDoubt, Tally
from digest.store.db import Store
from digest.store.tables import SendBatchRow


def take_over_dead(store: Store, edition_id: int, holder: str) -> list[int]:
    """Claim, for ``holder``, every batch of the edition held by a dead worker. Each batch is taken by one
    process only: the UPDATE names the dead holder, so a second recoverer finds it changed."""
    taken: list[int] = []
    with store.session() as s:
        claimed = s.execute(select(SendBatchRow.id, SendBatchRow.holder)
                            .where(SendBatchRow.edition_id == edition_id, SendBatchRow.status == "claimed")).all()
        dead = [(batch, old) for batch, old in claimed if old != holder and holder_gone(s, old)]
    for batch, old in dead:
        with store.session() as s:
            row = s.execute(update(SendBatchRow).where(SendBatchRow.id == batch, SendBatchRow.holder == old,
                                                       SendBatchRow.status == "claimed")
                            .values(holder=holder).returning(SendBatchRow.id)
                            .execution_options(synchronize_session=False)).first()
            if row is not None:
                taken.append(batch)
    return taken


def recover(store: Store, settings: Settings, backend: Backend, edition_id: int, tally: Tally, holder: str, *,
            unclaimed: bool, now_ts: float) -> int:
    """Resolve the ``sending`` rows of dead workers' batches (and, with ``unclaimed``, for the holder of the
    edition's lease, rows no live worker can own). Returns the batches taken over."""
    taken = take_over_dead(store, edition_id, holder)
    now = utcnow()
    with store.session() as s:
        stale = outbox.stale_sending(s, edition_id, batches=taken, unclaimed=unclaimed)
    for batch_id, rows in stale.items():
        ids = [r[0] for r in rows]
        schedule = outbox.schedule_of(batch_id)
        cancelled = False
        if (schedule is not None and backend.supports_schedule and batch_id.startswith(f"{backend.name}@")
                and schedule.send_at > now_ts + CANCEL_MARGIN_SECONDS):
            try:
                backend.cancel_schedule(schedule.batch_id)
                cancelled = True
            except ProviderError as exc:
                tally.errors.append(f"could not cancel scheduled request {schedule.batch_id}: {exc}")
        with store.session() as s:
            if cancelled:
                outbox.set_status(s, ids, "pending", now, expect="sending",
                                  error=f"requeued: scheduled request {batch_id} cancelled after its sender died")
                tally.requeued += len(ids)
                tally.in_doubt_found += [InDoubt(i, e, batch_id, "cancelled and resent") for i, e in rows]
            else:
                outbox.set_status(s, ids, "in_doubt", now, expect="sending", keep_batch=True,
                                  error="in doubt: the sending process died before the provider's answer "
                                        f"was recorded (batch {batch_id})")
                tally.marked_in_doubt += len(ids)
                tally.in_doubt_found += [InDoubt(i, e, batch_id, "kept (in_doubt_rule=assume_sent)") for i, e in rows]
    if settings.in_doubt_rule == "resend":
        _resend_in_doubt(store, edition_id, tally)
    with store.session() as s:
        if taken:
            # Recovered: what is left of them is anyone's again.
            s.execute(update(SendBatchRow).where(SendBatchRow.id.in_(taken), SendBatchRow.holder == holder)
                      .values(status="open", holder=None).execution_options(synchronize_session=False))
        reopen_batches(s, edition_id)
        sweep_dead_workers(s)
    return len(taken)


def _resend_in_doubt(store: Store, edition_id: int, tally: Tally) -> None:
    while True:
        with store.session() as s:
            rows = outbox.rows_with_status(s, edition_id, "in_doubt")
            if not rows:
                return
            outbox.set_status(s, [r[0] for r in rows], "pending", utcnow(), expect="in_doubt",
                              error="resent under in_doubt_rule=resend (was in doubt)")
        known = {d.delivery_id: d for d in tally.in_doubt_found}
        for delivery_id, email in rows:
            entry = known.get(delivery_id)
            if entry is not None:
                entry.resolution = "resent (in_doubt_rule=resend)"
            else:
                tally.in_doubt_found.append(InDoubt(delivery_id, email, None, "resent (in_doubt_rule=resend)"))
