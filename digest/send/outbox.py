"""The outbox: delivery rows and their state changes, ``pending → sending → sent | failed | in_doubt``.

Only the send's parts (plan, deliver, recover, record) call these, each inside one short transaction it
commits. Rows are read a batch at a time, so memory stays flat however many subscribers an edition has.

A row's ``batch_id`` says which provider call it went out in: ``<backend>:<run>:<n>``, or for a SendGrid
request scheduled ahead ``sendgrid@<SendGrid batch id>@<send_at>``, from which a later run can still cancel it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from digest.audience.lifecycle import email_hash, suppressed_hashes
from digest.audience.subscribers import receives_editions
from digest.send.backends.base import Schedule
from digest.store.tables import DeliveryRow, SendBatchRow, SubscriberRow, SuppressionRow


def batch_name(backend: str, run: str, seq: int, schedule: Schedule | None = None) -> str:
    if schedule is not None:
        return f"{backend}@{schedule.batch_id}@{schedule.send_at}"
    return f"{backend}:{run}:{seq}"


def schedule_of(batch_id: str | None) -> Schedule | None:
    """The cancellable SendGrid schedule a batch went out under, if any."""
    if not batch_id or batch_id.count("@") != 2:
        return None
    _, provider_batch, send_at = batch_id.split("@")
    if not send_at.isdigit():
        return None
    return Schedule(batch_id=provider_batch, send_at=int(send_at))


# A delivery row as planning writes it: a tuple in this order (`insert_deliveries`).
DELIVERY_COLUMNS = ("edition_id", "subscriber_id", "variant_id", "email", "status", "error", "attempt",
                    "work_batch", "created_at", "updated_at")


def stored_time(session: Session, moment: datetime) -> Any:
    """``moment`` as the database driver takes it for a `UTCDateTime` column (SQLite: text), converted once for
    many rows written with `insert_deliveries`, which hands values to the driver as they are."""
    dialect = session.get_bind().dialect
    process = DeliveryRow.__table__.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    return process(moment) if process is not None else moment


def insert_deliveries(session: Session, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert delivery rows (tuples of `DELIVERY_COLUMNS`, times from `stored_time`), ignoring any (edition,
    subscriber) that already has one.

    PostgreSQL: COPY into a temporary table, then one INSERT … SELECT … ON CONFLICT DO NOTHING (psycopg would
    otherwise send one INSERT per row). SQLite: one executemany of the driver, no type processing per row (the
    ORM's or Core's per-value bind processors were most of planning's time)."""
    if not rows:
        return 0
    columns = ", ".join(DELIVERY_COLUMNS)
    if session.get_bind().dialect.name == "postgresql":
        return _copy_deliveries(session, rows, columns)
    marks = ", ".join("?" for _ in DELIVERY_COLUMNS)
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(f"INSERT INTO deliveries ({columns}) VALUES ({marks}) "
                           "ON CONFLICT (edition_id, subscriber_id) DO NOTHING", rows)
        count = int(cursor.rowcount)
    finally:
        cursor.close()
    return count if count >= 0 else len(rows)


def _copy_deliveries(session: Session, rows: Sequence[tuple[Any, ...]], columns: str) -> int:
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS delivery_stage ON COMMIT DELETE ROWS AS "
                       f"SELECT {columns} FROM deliveries WITH NO DATA")
        with cursor.copy(f"COPY delivery_stage ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"INSERT INTO deliveries ({columns}) SELECT {columns} FROM delivery_stage "
                       "ORDER BY subscriber_id ON CONFLICT (edition_id, subscriber_id) DO NOTHING")
        inserted = int(cursor.rowcount)
        cursor.execute("DELETE FROM delivery_stage")
    finally:
        cursor.close()
    return inserted


class Due(NamedTuple):
    """A pending delivery at the moment of sending: its subscriber as the store has it now (plain columns: no
    ORM object per recipient on the hot path)."""

    delivery_id: int
    variant_id: int
    subscriber_id: int
    list_id: int
    email: str
    name: str | None
    status: str
    paused: bool
    receives: bool  # `receives_editions`, evaluated now


# Built once: a worker reads its batch a request at a time, a thousand times for a million readers.
_DUE = (select(DeliveryRow.id, DeliveryRow.variant_id, SubscriberRow.id, SubscriberRow.list_id,
               SubscriberRow.email, SubscriberRow.name, SubscriberRow.status, SubscriberRow.paused,
               receives_editions().label("receives"))
        .join(SubscriberRow, SubscriberRow.id == DeliveryRow.subscriber_id)
        .where(DeliveryRow.work_batch == bindparam("work_batch"), DeliveryRow.status == "pending",
               DeliveryRow.variant_id.is_not(None))
        .order_by(DeliveryRow.variant_id, DeliveryRow.id).limit(bindparam("limit")))


def batch_due(session: Session, work_batch: int, limit: int) -> list[Due]:
    """The next ``limit`` pending deliveries of a send batch, all of one variant (the first one's): one provider
    request's worth. A retract may have moved some of a batch's rows to another variant; they come next. (On the
    session's connection, past the ORM: plain columns need none of its work.)"""
    rows = list(map(Due._make, driver_rows(session, _DUE, {"work_batch": work_batch, "limit": limit})))
    return [r for r in rows if r.variant_id == rows[0].variant_id] if rows else []


_COMPILED: dict[tuple[int, str], Any] = {}


def driver_rows(session: Session, statement: Any, values: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of ``statement`` (compiled once per dialect) as the driver's plain tuples: no result processing, no
    Row objects. Only for statements whose columns the driver already returns as Python wants them (integers,
    text; SQLite's booleans come as 0 and 1, which read the same)."""
    dialect = session.get_bind().dialect
    key = (id(statement), dialect.name)
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = _COMPILED[key] = statement.compile(dialect=dialect)
    params = {**compiled.params, **values}
    if compiled.positional:
        bound: Any = tuple(params[name] for name in compiled.positiontup)
    else:
        bound = params
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.string, bound)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def has_due(session: Session, work_batch: int) -> bool:
    return session.scalar(select(DeliveryRow.id).where(DeliveryRow.work_batch == work_batch,
                                                       DeliveryRow.status == "pending",
                                                       DeliveryRow.variant_id.is_not(None)).limit(1)) is not None


def suppressed_emails(session: Session, emails: Iterable[str]) -> set[str]:
    """Which of ``emails`` are on the suppression list (compared by hash, as it is stored). An empty list (one
    cheap query) costs no hashing at all."""
    if session.scalar(select(SuppressionRow.id).limit(1)) is None:
        return set()
    by_hash = {email_hash(e): e for e in emails}
    return {by_hash[h] for h in suppressed_hashes(session, by_hash)}


def why_not_sendable(subscriber: Due, suppressed: set[str]) -> str | None:
    """Why a planned delivery is skipped at the moment of sending, or None to send it. ``receives`` is
    `receives_editions` as `pending_batch` read it: that rule decides; the subscriber's fields only word why."""
    if not subscriber.receives:
        if subscriber.status != "active":
            return f"subscriber is {subscriber.status}"
        if subscriber.paused:
            return "subscriber paused delivery"
        return "subscriber no longer receives editions"
    if subscriber.email in suppressed:
        return "address is suppressed"
    return None


def set_status(session: Session, ids: Sequence[int], status: str, now: datetime, *,
               expect: str | None = None, batch_id: str | None = None, error: str | None = None,
               provider_message_id: str | None = None, keep_batch: bool = False,
               in_batch: str | None = None) -> int:
    """Move rows to ``status``: those of ``ids``, or with ``in_batch`` every row of that provider request (one
    indexed condition instead of a thousand bound ids: what a whole request's outcome touches)."""
    if in_batch is None and not ids:
        return 0
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if not keep_batch:
        values["batch_id"] = batch_id
    if error is not None or status in ("sent", "sending"):
        values["error"] = error
    if provider_message_id is not None:
        values["provider_message_id"] = provider_message_id
    if status == "sent":
        values["sent_at"] = now
    stmt = update(DeliveryRow).where(DeliveryRow.batch_id == in_batch if in_batch is not None
                                     else DeliveryRow.id.in_(list(ids)))
    if expect is not None:
        stmt = stmt.where(DeliveryRow.status == expect)
    result = session.execute(stmt.values(**values).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def claim(session: Session, ids: Sequence[int], variant_id: int, batch_id: str, now: datetime, *,
          work_batch: int | None = None) -> set[int]:
    """Move ``ids`` from ``pending`` (and still of ``variant_id``) to ``sending`` under ``batch_id``; returns the ids
    actually claimed. A row cancelled, retracted to another variant or otherwise changed since it was read (on
    PostgreSQL another transaction may commit in between) is not claimed, and so is not sent.

    ``ids`` are a request's worth of one send batch (``work_batch``) in id order, so the claim is a range on
    that batch, not a thousand bound ids; any row of the range that was not asked for goes back at once."""
    if not ids:
        return set()
    wanted = set(ids)
    stmt = update(DeliveryRow).where(DeliveryRow.id.between(min(wanted), max(wanted)),
                                     DeliveryRow.status == "pending", DeliveryRow.variant_id == variant_id)
    if work_batch is not None:
        stmt = stmt.where(DeliveryRow.work_batch == work_batch)
    stmt = stmt.values(status="sending", batch_id=batch_id, error=None, updated_at=now,
                       attempt=DeliveryRow.attempt + 1).execution_options(synchronize_session=False)
    if session.get_bind().dialect.update_returning:
        claimed = set(session.scalars(stmt.returning(DeliveryRow.id)))
    else:  # SQLite before 3.35
        session.execute(stmt)
        # The UPDATE holds the claimed rows' locks until commit, so this read is exact.
        claimed = set(session.scalars(select(DeliveryRow.id).where(DeliveryRow.batch_id == batch_id,
                                                                   DeliveryRow.status == "sending")))
    extra = claimed - wanted
    if extra:
        session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(sorted(extra)))
                        .values(status="pending", batch_id=None, attempt=DeliveryRow.attempt - 1)
                        .execution_options(synchronize_session=False))
    return claimed & wanted


def retry_failed(session: Session, edition_id: int, now: datetime) -> int:
    """Every ``failed`` row of the edition goes back to ``pending``. Safe: ``failed`` means the provider refused
    the request (or the recipient), so nothing was delivered; in-doubt rows are never touched here."""
    result = session.execute(update(DeliveryRow)
                             .where(DeliveryRow.edition_id == edition_id, DeliveryRow.status == "failed")
                             .values(status="pending", batch_id=None, updated_at=now)
                             .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def cancel_pending(session: Session, edition_id: int, now: datetime) -> int:
    """Every ``pending`` row of a cancelled edition becomes ``cancelled``."""
    result = session.execute(update(DeliveryRow)
                             .where(DeliveryRow.edition_id == edition_id, DeliveryRow.status == "pending")
                             .values(status="cancelled", updated_at=now, error="edition cancelled")
                             .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def stale_sending(session: Session, edition_id: int, *, batches: Sequence[int] = (),
                  unclaimed: bool = False) -> dict[str, list[tuple[int, str]]]:
    """Rows a dead process left ``sending``, by provider batch id: (delivery id, email). Those of the send
    ``batches`` given (taken over from dead workers) and, with ``unclaimed``, those no live worker can own:
    without a send batch, or in a batch nobody holds."""
    where: list[Any] = []
    if batches:
        where.append(DeliveryRow.work_batch.in_(list(batches)))
    if unclaimed:
        held = select(SendBatchRow.id).where(SendBatchRow.edition_id == edition_id, SendBatchRow.status == "claimed")
        where.append(DeliveryRow.work_batch.is_(None) | DeliveryRow.work_batch.not_in(held))
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    if not where:
        return {}
    query = (select(DeliveryRow.id, DeliveryRow.email, DeliveryRow.batch_id)
             .where(DeliveryRow.edition_id == edition_id, DeliveryRow.status == "sending", or_(*where))
             .order_by(DeliveryRow.id))
    for delivery_id, email, batch_id in session.execute(query):
        out[batch_id or ""].append((delivery_id, email))
    return dict(out)


def rows_with_status(session: Session, edition_id: int, status: str, limit: int = 1000) -> list[tuple[int, str]]:
    query = (select(DeliveryRow.id, DeliveryRow.email)
             .where(DeliveryRow.edition_id == edition_id, DeliveryRow.status == status)
             .order_by(DeliveryRow.id).limit(limit))
    return [(r[0], r[1]) for r in session.execute(query)]


def counts(session: Session, edition_id: int) -> dict[str, int]:
    query = (select(DeliveryRow.status, func.count()).where(DeliveryRow.edition_id == edition_id)
             .group_by(DeliveryRow.status))
    return {status: int(n) for status, n in session.execute(query)}
