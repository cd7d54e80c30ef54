"""Subscriber status changes, each written to the audit log, and the cross-list suppression list."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.store.tables import AuditRow, SubscriberRow, SuppressionRow

# Statuses that mean "never send"; only an explicit resubscribe leaves them.
SUPPRESSING_STATUSES = frozenset({"unsubscribed", "bounced", "complained"})


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
    now = now or datetime.now(timezone.utc)
    old = subscriber.status
    subscriber.status = new_status
    if new_status == "active":
        subscriber.active_since = now
        subscriber.confirmed_at = subscriber.confirmed_at or now
        subscriber.unsubscribed_at = None
    elif new_status == "unsubscribed":
        subscriber.unsubscribed_at = now
    session.add(AuditRow(at=now, list_id=subscriber.list_id, subscriber_id=subscriber.id,
                         email_key=subscriber.email_key, old_status=old, new_status=new_status,
                         actor=actor, reason=reason))
    return True


def suppress(session: Session, email: str, reason: str, detail: str | None = None) -> bool:
    """Add an address to the suppression list (all lists). Returns False if it was already there."""
    digest_ = email_hash(email)
    if session.scalar(select(SuppressionRow.id).where(SuppressionRow.email_hash == digest_)) is not None:
        return False
    session.add(SuppressionRow(email_hash=digest_, reason=reason, detail=detail))
    return True


def is_suppressed(session: Session, email: str) -> bool:
    return session.scalar(select(SuppressionRow.id).where(SuppressionRow.email_hash == email_hash(email))) is not None
