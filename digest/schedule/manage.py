"""Editorial controls of the scheduler: set a list's schedule, approve an edition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.errors import DigestError, NotFound
from digest.schedule.cron import parse_schedule, zone
from digest.store.tables import EditionRow, MailingListRow, ScheduleRunRow

SKIPPED_UNAPPROVED = "skipped_unapproved"
AWAITING_APPROVAL = "awaiting_approval"
APPROVED = "approved"
SENT = "sent"


class ApprovalError(DigestError):
    """An edition that can no longer be approved."""


def set_list_schedule(session: Session, list_row: MailingListRow, schedule: str | None, *,
                      timezone: str | None = None, require_approval: bool | None = None) -> MailingListRow:
    """Change a list's schedule, zone and approval rule; everything is checked before anything is written.

    ``daily HH:MM`` is stored as no cron and ``send_time = HH:MM``; a cron expression is stored as given and its
    time of day is copied into ``send_time`` too, because the edition's cut-off is computed from ``send_time``.
    """
    if timezone is not None:
        zone(timezone, "--timezone")
    if schedule is not None:
        parsed = parse_schedule(schedule, list_row.send_time)
        list_row.schedule = parsed.expression
        list_row.send_time = parsed.at.strftime("%H:%M")
    if timezone is not None:
        list_row.timezone = timezone
    if require_approval is not None:
        list_row.require_approval = require_approval
    session.flush()
    return list_row


def record_run(session: Session, list_id: int, day: Any, outcome: str, detail: str | None, now: datetime) -> None:
    """Write (or update) what the scheduler decided for a list's day; one row per (list, date)."""
    def existing() -> ScheduleRunRow | None:
        return session.scalar(select(ScheduleRunRow).where(ScheduleRunRow.list_id == list_id,
                                                           ScheduleRunRow.date == day))

    row = existing()
    if row is None:
        try:
            with session.begin_nested():
                session.add(ScheduleRunRow(list_id=list_id, date=day, outcome=outcome, detail=detail, at=now))
            return
        except IntegrityError:  # written meanwhile by another process: update theirs
            row = existing()
            if row is None:
                raise
    row.outcome, row.detail, row.at = outcome, detail, now
    session.flush()


def run_outcome(session: Session, list_id: int, day: Any) -> str | None:
    return session.scalar(select(ScheduleRunRow.outcome).where(ScheduleRunRow.list_id == list_id,
                                                               ScheduleRunRow.date == day))


@dataclass
class Approval:
    edition_id: int
    list_name: str
    date: Any
    approved_at: datetime
    approved_by: str
    changed: bool  # False: it was already approved

    def to_json(self) -> dict[str, Any]:
        return {"edition_id": self.edition_id, "list": self.list_name, "date": self.date.isoformat(),
                "approved_at": self.approved_at, "approved_by": self.approved_by, "changed": self.changed}


def approve_edition(session: Session, edition_id: int, *, by: str, now: datetime) -> Approval:
    """Let the scheduler send an edition. Approving twice changes nothing; a skipped edition cannot be approved."""
    edition = session.get(EditionRow, edition_id, with_for_update=True)
    if edition is None:
        raise NotFound(f"no edition with id {edition_id} (see `digest editions ls`)")
    list_row = session.get(MailingListRow, edition.list_id)
    assert list_row is not None
    if run_outcome(session, edition.list_id, edition.date) == SKIPPED_UNAPPROVED:
        raise ApprovalError(f"edition {edition_id} ({list_row.name}, {edition.date}) was skipped: it was not approved "
                            "within catch_up_hours of its send time, and it will not be sent")
    if edition.status in ("cancelled", "skipped"):
        raise ApprovalError(f"edition {edition_id} ({list_row.name}, {edition.date}) is {edition.status}: "
                            "there is nothing left to approve")
    if edition.approved_at is not None:
        return Approval(edition.id, list_row.name, edition.date, edition.approved_at, edition.approved_by or "",
                        False)
    edition.approved_at, edition.approved_by = now, by
    if edition.status == "draft":  # the send part's name for an approved edition not yet sending
        edition.status = "approved"
    if run_outcome(session, edition.list_id, edition.date) == AWAITING_APPROVAL:
        record_run(session, edition.list_id, edition.date, APPROVED, f"approved by {by}", now)
    session.flush()
    return Approval(edition.id, list_row.name, edition.date, now, by, True)
