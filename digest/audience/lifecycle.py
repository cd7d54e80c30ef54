"""Subscriber status changes, each written to the audit log, and the cross-list suppression list."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.store.tables import AuditRow, SubscriberRow, SuppressionRow

# Statuses that mean "never send"; only an explicit resubscribe leaves them.
SUPPRESSING_STATUSES = frozenset({"unsubscribed", "bounced", "complained"})

# What a suppression reason does to the subscribers it matches on every list.
_STATUS_FOR_REASON = {"bounce": "bounced", "bounced": "bounced", "hard_bounce": "bounced",
                      "complaint": "complained", "complained": "complained", "spam": "complained"}


def email_key(email: str) -> str:
    """What uniqueness and suppression compare: the normalized address, lower-cased."""
    return email.strip().lower()


def email_hash(email: str) -> str:
    return hashlib.sha256(email_key(email).encode("utf-8")).hexdigest()


def change_status(session: Session, subscriber: SubscriberRow, new_status: str, *, actor: str,
                  reason: str | None = None, now: datetime | None = None) -> bool:
    """Move a subscriber to ``new_status`` and audit it. Returns False (and writes nothing) if already there."""
    if subscriber.status == new_status:
        return False
    now = now or datetime.now(UTC)
    old = subscriber.status
    subscriber.status = new_status
    if new_status == "active":
        subscriber.active_since = now
        subscriber.confirmed_at = subscriber.confirmed_at or now
        subscriber.unsubscribed_at = None
    elif new_status == "unsubscribed":
        subscriber.unsubscribed_at = now
    if subscriber.id is None:
        session.flush()
    session.add(AuditRow(at=now, list_id=subscriber.list_id, subscriber_id=subscriber.id,
                         email_key=subscriber.email_key, old_status=old, new_status=new_status,
                         actor=actor, reason=reason))
    return True


def record_created(session: Session, subscriber: SubscriberRow, *, actor: str, reason: str | None = None,
                   now: datetime | None = None) -> None:
    """Audit a new subscriber (old status: none), so the log shows how every subscriber came to be."""
    now = now or datetime.now(UTC)
    if subscriber.status == "active":
        subscriber.active_since = subscriber.active_since or now
        subscriber.confirmed_at = subscriber.confirmed_at or now
    elif subscriber.status == "unsubscribed":
        subscriber.unsubscribed_at = subscriber.unsubscribed_at or now
    if subscriber.id is None:
        session.add(subscriber)
        session.flush()
    session.add(AuditRow(at=now, list_id=subscriber.list_id, subscriber_id=subscriber.id,
                         email_key=subscriber.email_key, old_status=None, new_status=subscriber.status,
                         actor=actor, reason=reason))


def record_removed(session: Session, subscriber: SubscriberRow, *, actor: str, reason: str | None = None,
                   now: datetime | None = None) -> None:
    """Audit a subscriber row's deletion (new status: ``removed``), then delete it."""
    session.add(AuditRow(at=now or datetime.now(UTC), list_id=subscriber.list_id,
                         subscriber_id=subscriber.id, email_key=subscriber.email_key, old_status=subscriber.status,
                         new_status="removed", actor=actor, reason=reason))
    session.delete(subscriber)


def last_audit_id(session: Session, subscriber_id: int) -> int:
    """Changes whenever the subscriber's status does: a confirmation link made before a change is void after it."""
    return int(session.scalar(select(func.max(AuditRow.id)).where(AuditRow.subscriber_id == subscriber_id)) or 0)


def last_audit_ids(session: Session, subscriber_ids: Iterable[int], chunk: int = 500) -> dict[int, int]:
    """``last_audit_id`` of many subscribers in a few queries; a subscriber without audit entries is left out."""
    wanted = list(dict.fromkeys(subscriber_ids))
    found: dict[int, int] = {}
    for i in range(0, len(wanted), chunk):
        rows = session.execute(select(AuditRow.subscriber_id, func.max(AuditRow.id))
                               .where(AuditRow.subscriber_id.in_(wanted[i:i + chunk]))
                               .group_by(AuditRow.subscriber_id))
        found.update({sid: last for sid, last in rows if sid is not None and last is not None})
    return found


def status_for_reason(reason: str) -> str:
    return _STATUS_FOR_REASON.get(reason.strip().lower(), "unsubscribed")


def suppress(session: Session, email: str, reason: str, detail: str | None = None) -> bool:
    """Add an address to the suppression list (all lists). Returns False if it was already there."""
    if is_suppressed(session, email):
        return False
    session.add(SuppressionRow(email_hash=email_hash(email), reason=reason[:40], detail=detail))
    session.flush()
    return True


def suppress_and_mark(session: Session, email: str, reason: str, *, actor: str,
                      detail: str | None = None) -> tuple[bool, int]:
    """Suppress an address and move its subscribers on every list to the matching never-send status.

    Returns (newly suppressed, subscribers changed)."""
    added = suppress(session, email, reason, detail)
    target = status_for_reason(reason)
    changed = 0
    rows = session.scalars(select(SubscriberRow).where(SubscriberRow.email_key == email_key(email))).all()
    for row in rows:
        if row.status in SUPPRESSING_STATUSES:
            continue
        if change_status(session, row, target, actor=actor, reason=f"suppressed: {reason}"):
            changed += 1
    return added, changed


def is_suppressed(session: Session, email: str) -> bool:
    return session.scalar(select(SuppressionRow.id).where(SuppressionRow.email_hash == email_hash(email))) is not None


def suppressed_hashes(session: Session, hashes: Iterable[str], chunk: int = 500) -> set[str]:
    """Which of these address hashes are suppressed, in a few queries however many there are."""
    wanted = list(dict.fromkeys(hashes))
    found: set[str] = set()
    for i in range(0, len(wanted), chunk):
        part = wanted[i:i + chunk]
        found.update(session.scalars(select(SuppressionRow.email_hash).where(SuppressionRow.email_hash.in_(part))))
    return found
