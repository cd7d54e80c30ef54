"""The desk's audit trail, in the store's audit log: one entry per change of an edition, with who and when.

An entry has the edition's list, no subscriber, ``new_status`` ``edition:<action>`` and a ``reason`` that starts
with ``edition <id> (<list> <date>)``, so an edition's history is one query and a subscriber's never shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.store.tables import AuditRow, EditionRow, MailingListRow

PREFIX = "edition:"


@dataclass(frozen=True)
class DeskEntry:
    at: datetime
    by: str
    action: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "by": self.by, "action": self.action, "detail": self.detail}


def _head(edition: EditionRow, list_row: MailingListRow) -> str:
    return f"edition {edition.id} ({list_row.name} {edition.date.isoformat()})"


def record(session: Session, edition: EditionRow, list_row: MailingListRow, action: str, detail: str, *,
           by: str, now: datetime) -> DeskEntry:
    """Log one change of ``edition``: ``action`` (pin, leave-out, note, ...) and what it was about."""
    session.add(AuditRow(at=now, list_id=list_row.id, subscriber_id=None, email_key=None, old_status=None,
                         new_status=(PREFIX + action)[:20], actor=by[:200],
                         reason=f"{_head(edition, list_row)}: {detail}"))
    session.flush()
    return DeskEntry(now, by, action, detail)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def history(session: Session, edition: EditionRow, list_row: MailingListRow, limit: int = 100) -> list[DeskEntry]:
    """The edition's changes, newest first."""
    head = _head(edition, list_row) + ": "
    rows = session.scalars(
        select(AuditRow)
        .where(AuditRow.list_id == list_row.id, AuditRow.subscriber_id.is_(None),
               AuditRow.new_status.like(PREFIX + "%"), AuditRow.reason.like(_like_prefix(head), escape="\\"))
        .order_by(AuditRow.id.desc()).limit(limit)).all()
    return [DeskEntry(r.at, r.actor, (r.new_status or "")[len(PREFIX):], (r.reason or "")[len(head):])
            for r in rows]


def fingerprint(session: Session) -> str:
    """Moves whenever any edition is changed at a desk or approved: for the preview's live reload, which also
    has to notice changes made with `digest editions ...` in another process."""
    last_change = session.scalar(select(func.max(AuditRow.id)).where(AuditRow.new_status.like(PREFIX + "%")))
    last_approval = session.scalar(select(func.max(EditionRow.approved_at)))
    return f"{last_change or 0}/{last_approval or '-'}"
