"""Mailing lists: create, find, and the default list created on first use."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.errors import NotFound
from digest.store.tables import MailingListRow


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
    values: dict[str, object] = dict(
        name=name, from_email=settings.from_email, from_name=settings.from_name,
        reply_to=settings.reply_to or None, topics=[], timezone=settings.timezone, send_time=settings.send_time,
        double_opt_in=settings.double_opt_in,
    )
    values.update({k: v for k, v in overrides.items() if v is not None})
    return MailingListRow(**values)
