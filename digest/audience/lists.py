"""Mailing lists: create, find, remove, and the default list created on first use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.orm import Session

from digest.audience.validate import (
    Invalid,
    check_list_name,
    check_send_time,
    check_timezone,
    normalize_email,
    parse_topics,
)
from digest.config import Settings
from digest.errors import DigestError, NotFound
from digest.store.tables import AuditRow, MailingListRow, SubscriberRow, UTCDateTime


class ListError(DigestError):
    """A list option is wrong, or the list cannot be created or removed as asked."""


def get_list(session: Session, name: str) -> MailingListRow:
    row = session.scalar(select(MailingListRow).where(MailingListRow.name == name))
    if row is None:
        raise NotFound(f"no list named {name!r} (see `digest lists ls`)")
    return row


def ensure_list(session: Session, settings: Settings, name: str | None = None) -> MailingListRow:
    """The named list, or the default list (``default_list``), created with the config's defaults if missing."""
    name = name or settings.default_list
    row = session.scalar(select(MailingListRow).where(MailingListRow.name == name))
    if row is not None:
        return row
    if name != settings.default_list:
        raise NotFound(f"no list named {name!r} (see `digest lists ls`; only default_list is created on first use)")
    row = new_list_row(settings, name)
    session.add(row)
    session.flush()
    return row


def new_list_row(settings: Settings, name: str, **overrides: object) -> MailingListRow:
    values: dict[str, object] = {
        "name": name, "from_email": settings.from_email, "from_name": settings.from_name,
        "reply_to": settings.reply_to or None, "topics": [], "timezone": settings.timezone,
        "send_time": settings.send_time, "double_opt_in": settings.double_opt_in,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return MailingListRow(**values)


def create_list(session: Session, settings: Settings, name: str, *, from_email: str | None = None,
                from_name: str | None = None, reply_to: str | None = None, timezone: str | None = None,
                send_time: str | None = None, topics: str | list[str] | None = None,
                double_opt_in: bool | None = None, title: str | None = None) -> MailingListRow:
    """Create a list; every option is checked first and an error names the option that is wrong."""
    try:
        name = check_list_name(name)
        values: dict[str, Any] = {
            "from_email": _checked("--from-email", normalize_email, from_email or settings.from_email),
            "from_name": (from_name if from_name is not None else settings.from_name).strip() or settings.from_name,
            "reply_to": _checked("--reply-to", normalize_email, reply_to) if reply_to else
            (settings.reply_to or None),
            "timezone": _checked("--timezone", check_timezone, timezone or settings.timezone),
            "send_time": _checked("--send-time", check_send_time, send_time or settings.send_time),
            "topics": parse_topics(topics) if topics else [],
            "double_opt_in": settings.double_opt_in if double_opt_in is None else double_opt_in,
            "title": title,
        }
    except Invalid as exc:
        raise ListError(str(exc)) from None
    if session.scalar(select(MailingListRow.id).where(MailingListRow.name == name)) is not None:
        raise ListError(f"a list named {name!r} already exists (see `digest lists show {name}`)")
    row = new_list_row(settings, name, **values)
    row.double_opt_in = bool(values["double_opt_in"])
    session.add(row)
    session.flush()
    return row


def _checked(option: str, check: Any, value: str) -> str:
    try:
        return str(check(value))
    except Invalid as exc:
        raise Invalid(f"{option}: {exc}") from None


def all_lists(session: Session) -> list[MailingListRow]:
    return list(session.scalars(select(MailingListRow).order_by(MailingListRow.name)))


def subscriber_counts(session: Session, list_id: int | None = None) -> dict[int, dict[str, int]]:
    """Subscribers per list and status, in one query."""
    query = select(SubscriberRow.list_id, SubscriberRow.status, func.count()).group_by(
        SubscriberRow.list_id, SubscriberRow.status)
    if list_id is not None:
        query = query.where(SubscriberRow.list_id == list_id)
    counts: dict[int, dict[str, int]] = {}
    for lid, status, n in session.execute(query):
        counts.setdefault(lid, {})[status] = int(n)
    return counts


def remove_list(session: Session, name: str, *, force: bool = False, actor: str = "cli") -> int:
    """Delete a list and (with ``force``) its subscribers; returns how many subscribers went with it."""
    row = get_list(session, name)
    total = sum(subscriber_counts(session, row.id).get(row.id, {}).values())
    if total and not force:
        raise ListError(f"list {name!r} has {total} subscriber(s); pass --force to remove it and them")
    # Each subscriber's end is audited like `subscribers rm` (one INSERT ... SELECT, however many there are).
    t = SubscriberRow
    session.execute(insert(AuditRow).from_select(
        ["at", "list_id", "subscriber_id", "email_key", "old_status", "new_status", "actor", "reason"],
        select(literal(datetime.now(UTC), UTCDateTime()), t.list_id, t.id, t.email_key, t.status,
               literal("removed"), literal(actor), literal(f"list {name} removed"))
        .where(t.list_id == row.id)))
    # Delete explicitly rather than trust ON DELETE CASCADE: SQLite honours it only with the foreign_keys pragma.
    session.execute(delete(SubscriberRow).where(SubscriberRow.list_id == row.id)
                    .execution_options(synchronize_session=False))
    session.delete(row)
    return total


def list_to_json(row: MailingListRow, counts: dict[str, int] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row.id, "name": row.name, "title": row.title, "from_email": row.from_email,
        "from_name": row.from_name, "reply_to": row.reply_to, "topics": list(row.topics or []),
        "timezone": row.timezone, "send_time": row.send_time, "schedule": row.schedule,
        "double_opt_in": row.double_opt_in, "require_approval": row.require_approval,
        "created_at": row.created_at,
    }
    if counts is not None:
        data["subscribers"] = dict(sorted(counts.items()))
    return data
