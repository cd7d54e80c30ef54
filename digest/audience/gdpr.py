"""A person's data across every list: export it (right of access) or erase it (right to erasure).

Erasure deletes the subscriber rows, scrubs the address from the audit log, deliveries and events (the rows stay,
so counts and statistics still add up), and leaves only a hashed suppression entry, so the address is never
imported or mailed again while the store keeps no readable trace of it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from digest.audience.lifecycle import email_hash, suppress
from digest.audience.subscribers import audit_to_json, key_for, to_json
from digest.store.tables import (
    AuditRow,
    DeliveryRow,
    EventRow,
    MailingListRow,
    SubscriberRow,
    SuppressionRow,
    ThrottleRow,
)

FORGOTTEN = "forgotten"
# Event payload fields that identify a person beyond the address itself.
_PERSONAL_PAYLOAD_KEYS = {"email", "ip", "useragent", "user_agent", "to", "recipient"}


def _subscribers(session: Session, key: str) -> list[SubscriberRow]:
    return list(session.scalars(select(SubscriberRow).where(SubscriberRow.email_key == key)
                                .order_by(SubscriberRow.id)))


# Rows are matched by the address they carry, never by subscriber id alone: SQLite hands a deleted subscriber's
# id to the next one, so an id can name two people over time, and one person's export (or erasure) must not
# take in the other's rows.


def _delivery_filter(key: str, subs: list[SubscriberRow]) -> Any:
    # lower() in SQL folds only ASCII on SQLite; the exact stored spellings catch the rest.
    clauses = [func.lower(DeliveryRow.email) == key]  # not LIKE: '_' and '%' are legal in addresses
    if subs:
        clauses.append(and_(DeliveryRow.subscriber_id.in_([s.id for s in subs]),
                            DeliveryRow.email.in_(sorted({s.email for s in subs}))))
    return or_(*clauses)


def _event_filter(key: str) -> Any:
    return EventRow.email_key == key


def _audit_filter(key: str) -> Any:
    return AuditRow.email_key == key


def export_data(session: Session, email: str) -> dict[str, Any]:
    """Everything stored about ``email``: subscriptions, audit log, deliveries, events, suppression."""
    key = key_for(email)
    subs = _subscribers(session, key)
    lists = {row.id: row for row in session.scalars(select(MailingListRow))}
    suppression = session.scalar(select(SuppressionRow).where(SuppressionRow.email_hash == email_hash(key)))
    deliveries = session.scalars(select(DeliveryRow).where(_delivery_filter(key, subs)).order_by(DeliveryRow.id))
    events = session.scalars(select(EventRow).where(_event_filter(key)).order_by(EventRow.id))
    audit = session.scalars(select(AuditRow).where(_audit_filter(key)).order_by(AuditRow.id))
    return {
        "email": key,
        "exported_at": datetime.now(UTC),
        "subscriptions": [to_json(s, lists[s.list_id]) for s in subs if s.list_id in lists],
        "audit_log": [audit_to_json(a) for a in audit],
        "deliveries": [{"id": d.id, "edition_id": d.edition_id, "subscriber_id": d.subscriber_id,
                        "email": d.email, "status": d.status, "provider_message_id": d.provider_message_id,
                        "created_at": d.created_at, "sent_at": d.sent_at, "error": d.error} for d in deliveries],
        "events": [{"id": e.id, "provider": e.provider, "type": e.type, "edition_id": e.edition_id,
                    "subscriber_id": e.subscriber_id, "article_id": e.article_id, "url": e.url, "reason": e.reason,
                    "occurred_at": e.occurred_at, "payload": e.payload} for e in events],
        "suppressed": None if suppression is None else {"reason": suppression.reason,
                                                         "created_at": suppression.created_at},
    }


def _scrub(value: Any, needle: str) -> Any:
    """Remove an address (and other identifying fields) from a JSON-like value, however deep."""
    if isinstance(value, dict):
        return {k: _scrub(v, needle) for k, v in value.items() if str(k).lower() not in _PERSONAL_PAYLOAD_KEYS}
    if isinstance(value, list):
        return [_scrub(v, needle) for v in value]
    if isinstance(value, str) and needle in value.lower():
        return FORGOTTEN
    return value


def forget(session: Session, email: str, *, actor: str = "cli",
           now: datetime | None = None) -> dict[str, int | bool]:
    """Erase ``email`` everywhere (see the module docstring). Idempotent: a second run finds nothing to erase."""
    key = key_for(email)
    now = now or datetime.now(UTC)
    subs = _subscribers(session, key)
    audited = 0
    for entry in session.scalars(select(AuditRow).where(_audit_filter(key))):
        entry.email_key = None
        if entry.reason and key in entry.reason.lower():
            entry.reason = FORGOTTEN
        audited += 1
    # A provider's error text often quotes the address ("550 <bob@...>: user unknown").
    for delivery in session.scalars(select(DeliveryRow).where(_delivery_filter(key, subs),
                                                               DeliveryRow.error.is_not(None))):
        if delivery.error and key in delivery.error.lower():
            delivery.error = FORGOTTEN
    session.flush()
    result = session.execute(update(DeliveryRow).where(_delivery_filter(key, subs)).values(email=FORGOTTEN)
                             .execution_options(synchronize_session=False))
    deliveries = cast(CursorResult[Any], result).rowcount
    events = 0
    for event in session.scalars(select(EventRow).where(_event_filter(key))):
        event.email_key = None
        event.payload = _scrub(event.payload or {}, key)
        if event.url and key in event.url.lower():
            event.url = None
        if event.reason and key in event.reason.lower():
            event.reason = FORGOTTEN
        events += 1
    session.execute(delete(ThrottleRow).where(ThrottleRow.key == email_hash(key)))
    for sub in subs:
        # The erasure itself is audited without the address: proof it happened, nothing to identify whom.
        session.add(AuditRow(at=now, list_id=sub.list_id, subscriber_id=sub.id, email_key=None,
                             old_status=sub.status, new_status=FORGOTTEN, actor=actor, reason="erasure request"))
        session.delete(sub)
    newly_suppressed = suppress(session, key, FORGOTTEN, detail="erasure request")
    if not newly_suppressed:
        # Already suppressed (a bounce, a complaint): the entry's detail may quote the address (a bounce reason),
        # and the feedback part recognises erased addresses by this reason, so late events stay anonymous.
        session.execute(update(SuppressionRow).where(SuppressionRow.email_hash == email_hash(key))
                        .values(reason=FORGOTTEN, detail="erasure request"))
    return {"subscriptions": len(subs), "audit_rows": audited, "deliveries": int(deliveries or 0),
            "events": events, "newly_suppressed": newly_suppressed}

