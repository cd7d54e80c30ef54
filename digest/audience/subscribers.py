"""Subscribers of a list: add, remove, find, list, show, unsubscribe, and their effective settings.

A subscriber's own topics, time zone and send time override the list's; ``effective_*`` is what ranking and
scheduling should use, and ``recipients`` is who a send goes to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from digest.audience.importer import ImportReport, Record, merge
from digest.audience.lifecycle import SUPPRESSING_STATUSES, change_status, email_key, record_removed
from digest.audience.validate import (
    Invalid,
    check_language,
    check_send_time,
    check_sendable,
    check_status,
    check_timezone,
    clean_name,
    normalize_email,
    parse_topics,
)
from digest.config import Settings
from digest.errors import DigestError, NotFound
from digest.i18n.languages import effective_language as _effective_language
from digest.store.tables import AuditRow, MailingListRow, SubscriberRow


class SubscriberError(DigestError):
    """A subscriber value is wrong (the message names the field and the address)."""


def key_for(email: str) -> str:
    """The comparison key of a typed address; an address email-validator rejects is compared as typed."""
    try:
        return email_key(normalize_email(email))
    except Invalid:
        return email_key(email)


def find(session: Session, list_row: MailingListRow, email: str) -> SubscriberRow | None:
    return session.scalar(select(SubscriberRow).where(SubscriberRow.list_id == list_row.id,
                                                      SubscriberRow.email_key == key_for(email)))


def get(session: Session, list_row: MailingListRow, email: str) -> SubscriberRow:
    row = find(session, list_row, email)
    if row is None:
        raise NotFound(f"{email}: not a subscriber of list {list_row.name!r}")
    return row


def add(session: Session, list_row: MailingListRow, email: str, *, name: str | None = None,
        topics: str | None = None, timezone: str | None = None, send_time: str | None = None,
        status: str | None = None, resubscribe: bool = False, actor: str = "cli",
        source: str = "cli", backend: str | None = None, language: str | None = None) -> ImportReport:
    """Add or update one subscriber by the same rules as an import of a one-row file (``backend``: refuse an
    address it cannot deliver to, as the import does)."""
    try:
        address = normalize_email(email)
        if backend is not None:
            check_sendable(address, backend)
        record = Record(
            line=None, email=address, name=clean_name(name),
            topics=parse_topics(topics, list_row.topics) if topics is not None else None,
            timezone=check_timezone(timezone) if timezone else None,
            send_time=check_send_time(send_time) if send_time else None,
            status=check_status(status) if status else None,
            language=check_language(language) if language else None,
        )
    except Invalid as exc:
        raise SubscriberError(f"{email}: {exc}") from None
    default = record.status or "active"
    report = merge(session, list_row, [record], source=source, actor=actor,
                   default_status=default, resubscribe=resubscribe)
    if report.rejected:
        raise SubscriberError(f"{email}: {report.rejected[0].reason}")
    return report


def remove(session: Session, list_row: MailingListRow, email: str, *, actor: str = "cli") -> None:
    record_removed(session, get(session, list_row, email), actor=actor, reason="removed from the list")


def unsubscribe(session: Session, subscriber: SubscriberRow, *, actor: str, reason: str | None = None,
                now: datetime | None = None) -> bool:
    """Unsubscribe now (idempotent: a subscriber already in a never-send status is left as it is)."""
    if subscriber.status in SUPPRESSING_STATUSES:
        return False
    return change_status(session, subscriber, "unsubscribed", actor=actor, reason=reason, now=now)


def query(list_row: MailingListRow, status: str | None = None, search: str | None = None) -> Select[Any]:
    q = select(SubscriberRow).where(SubscriberRow.list_id == list_row.id).order_by(SubscriberRow.id)
    if status:
        q = q.where(SubscriberRow.status == status)
    if search:
        pattern = f"%{search.lower()}%"
        q = q.where(or_(SubscriberRow.email_key.like(pattern), SubscriberRow.name.ilike(pattern)))
    return q


def list_subscribers(session: Session, list_row: MailingListRow, *, status: str | None = None,
                     search: str | None = None, limit: int | None = None) -> list[SubscriberRow]:
    q = query(list_row, status, search)
    if limit:
        q = q.limit(limit)
    return list(session.scalars(q))


def receives_editions() -> ColumnElement[bool]:
    """The one rule of who gets editions: active and not paused. Planning, grouping into variants and
    scheduling all filter with it, whatever columns they select."""
    return and_(SubscriberRow.status == "active", SubscriberRow.paused.is_(False))


def recipients(list_row: MailingListRow) -> Select[Any]:
    """Who an edition of ``list_row`` goes to, in id order."""
    return (select(SubscriberRow)
            .where(SubscriberRow.list_id == list_row.id, receives_editions())
            .order_by(SubscriberRow.id))


def effective_topics(subscriber: SubscriberRow, list_row: MailingListRow) -> list[str]:
    """The subscriber's chosen topics, or all the list offers when they chose none."""
    return list(subscriber.topics or list_row.topics or [])


def effective_timezone(subscriber: SubscriberRow, list_row: MailingListRow) -> str:
    return subscriber.timezone or list_row.timezone


def effective_send_time(subscriber: SubscriberRow, list_row: MailingListRow) -> str:
    return subscriber.send_time or list_row.send_time


def effective_language(subscriber: SubscriberRow | None, list_row: MailingListRow, settings: Settings | None) -> str:
    """The language the subscriber reads in: their own, else the list's, else theme.language, else English."""
    theme = (settings.theme or {}).get("language") if settings is not None else None
    return _effective_language(subscriber.language if subscriber is not None else None, list_row.language, theme)


def history(session: Session, subscriber: SubscriberRow) -> list[AuditRow]:
    # By id and address: SQLite gives a deleted subscriber's id to the next one, whose history is not theirs.
    return list(session.scalars(select(AuditRow).where(AuditRow.subscriber_id == subscriber.id,
                                                       AuditRow.email_key == subscriber.email_key)
                                .order_by(AuditRow.id)))


def audit_to_json(row: AuditRow) -> dict[str, Any]:
    return {"at": row.at, "list_id": row.list_id, "subscriber_id": row.subscriber_id, "email_key": row.email_key,
            "old_status": row.old_status, "new_status": row.new_status, "actor": row.actor, "reason": row.reason}


def to_json(subscriber: SubscriberRow, list_row: MailingListRow, settings: Settings | None = None) -> dict[str, Any]:
    return {
        "id": subscriber.id, "list": list_row.name, "email": subscriber.email, "name": subscriber.name,
        "status": subscriber.status, "topics": list(subscriber.topics or []), "timezone": subscriber.timezone,
        "send_time": subscriber.send_time, "language": subscriber.language, "paused": subscriber.paused, "source": subscriber.source,
        "created_at": subscriber.created_at, "confirmed_at": subscriber.confirmed_at,
        "unsubscribed_at": subscriber.unsubscribed_at, "active_since": subscriber.active_since,
        "soft_bounces": subscriber.soft_bounces,
        "effective": {"topics": effective_topics(subscriber, list_row),
                      "timezone": effective_timezone(subscriber, list_row),
                      "send_time": effective_send_time(subscriber, list_row),
                      "language": effective_language(subscriber, list_row, settings)},
    }
