"""The editor's note of an edition: set, replaced or cleared until the edition's first delivery, refused after.

A note changes what every variant shows, so variants already rendered for pending deliveries are rendered again
in the same transaction (a send never picks up a variant between the old render and the new one). Once any
delivery has gone out (or is going out, or is in doubt), readers have the note they have: changing it would make
the web version and the archive disagree with their inbox, so the change is refused and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest import editions
from digest.audience.lists import get_list
from digest.config import Settings
from digest.errors import DigestError
from digest.render.note import NOTE_MAX_CHARS, clean_note
from digest.store.tables import DeliveryRow, EditionRow, VariantRow

# Delivery states that mean a reader has (or may have) the email already.
DELIVERED_STATUSES = ("sending", "sent", "in_doubt", "failed")
CLOSED_EDITION_STATUSES = ("sent", "skipped", "cancelled")


class NoteRefused(DigestError):
    """The note cannot change any more (the edition went out, or was closed), or it is too long."""


@dataclass(frozen=True)
class NoteChange:
    edition_id: int
    list_name: str
    date: date
    note: str | None
    rerendered_variants: list[int]

    def to_json(self) -> dict[str, Any]:
        return {"edition_id": self.edition_id, "list": self.list_name, "date": self.date.isoformat(),
                "note": self.note, "rerendered_variants": self.rerendered_variants}


def why_locked(session: Session, edition: EditionRow) -> str | None:
    """Why the note of ``edition`` can no longer change, or None while it can."""
    delivered = session.scalar(select(func.count()).select_from(DeliveryRow).where(
        DeliveryRow.edition_id == edition.id, DeliveryRow.status.in_(DELIVERED_STATUSES)))
    if delivered:
        return (f"edition {edition.id} has already gone out to {delivered} reader(s); the note they got is the "
                "one on the web version and in the archive")
    if edition.status in CLOSED_EDITION_STATUSES:
        return f"edition {edition.id} is {edition.status}"
    return None


def set_note(session: Session, settings: Settings, list_name: str, day: date, text: str | None, *,
             now: datetime | None = None) -> NoteChange:
    """Set (or, with empty ``text``, clear) the note of ``list_name``'s edition of ``day``."""
    now = now or datetime.now(UTC)
    note = clean_note(text) or None
    if note is not None and len(note) > NOTE_MAX_CHARS:
        raise NoteRefused(f"note: {len(note)} characters, at most {NOTE_MAX_CHARS} (it opens an email)")
    list_row = get_list(session, list_name)
    edition = editions.get_or_create_edition(session, settings, list_row, day)
    session.flush()
    # A send starting now takes the same row lock when it freezes the edition, so it sees either note.
    session.refresh(edition, with_for_update=True)
    reason = why_locked(session, edition)
    if reason is not None:
        raise NoteRefused(f"the note of {list_name} on {day.isoformat()} can no longer change: {reason}")
    edition.editor_note = note
    rerendered: list[int] = []
    variants = list(session.scalars(select(VariantRow).where(VariantRow.edition_id == edition.id)))
    if variants:
        from digest.send.plan import Planner  # the send part's planner renders and reassigns variants

        for variant in variants:
            variant.html = None
            variant.rendered_at = None
        session.flush()
        planner = Planner(settings, edition.id, now)
        planner.reassign(session, [v.id for v in variants])
        rerendered = sorted(planner.variants)
    return NoteChange(edition.id, list_row.name, day, note, rerendered)
