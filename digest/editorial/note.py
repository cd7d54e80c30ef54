"""The editor's note of an edition: set, replaced or cleared until the edition's first delivery, refused after.

Whether the note may change is the desk's rule (``digest.desk.actions.refusal``), so `digest editions note` and
the desk's "Save note" can never disagree: refused once any delivery has gone out (or is going out, or is in
doubt) and once the edition is closed (a past edition not sent yet keeps its note editable: it can still be
sent with `digest send --date`). Readers have the note they have: changing it then
would make the web version and the archive disagree with their inbox. Planned deliveries do not stop it: a note
changes what every variant shows, so variants already rendered for pending deliveries are rendered again in the
same transaction (a send never picks up a variant between the old render and the new one). Every change is
audit-logged with who and when, as the desk's other changes are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.desk import audit
from digest.desk.actions import NOTE_RULE, DeskRefused, editable
from digest.render.note import NOTE_MAX_CHARS, clean_note
from digest.store.tables import VariantRow


class NoteRefused(DeskRefused):
    """The note cannot change any more (the edition went out, or was closed, or is past), or it is too long."""


@dataclass(frozen=True)
class NoteChange:
    edition_id: int
    list_name: str
    date: date
    note: str | None
    rerendered_variants: list[int]
    by: str
    at: datetime
    changed: bool

    def to_json(self) -> dict[str, Any]:
        return {"edition_id": self.edition_id, "list": self.list_name, "date": self.date.isoformat(),
                "note": self.note, "rerendered_variants": self.rerendered_variants, "by": self.by,
                "at": self.at, "changed": self.changed}


def _detail(note: str | None) -> str:
    if note is None:
        return "cleared"
    first = " ".join(note.split())
    return f"set ({len(note)} characters): {first[:80]}{'…' if len(first) > 80 else ''}"


def set_note(session: Session, settings: Settings, list_name: str | None, day: date | None, text: str | None, *,
             by: str, now: datetime | None = None) -> NoteChange:
    """Set (or, with empty ``text``, clear) the note of the list's edition of ``day`` (default: the list's
    upcoming one, and the default list), as ``by``. The same note again changes and logs nothing."""
    now = now or datetime.now(UTC)
    note = clean_note(text) or None
    if note is not None and len(note) > NOTE_MAX_CHARS:
        raise NoteRefused(f"note: {len(note)} characters, at most {NOTE_MAX_CHARS} (it opens an email)")
    try:
        target = editable(session, settings, list_name, day, now=now, **NOTE_RULE)
    except DeskRefused as exc:
        raise NoteRefused(f"the note can no longer change: {exc}") from exc
    edition, list_row = target.edition, target.list_row
    if edition.editor_note == note:
        return NoteChange(edition.id, list_row.name, edition.date, note, [], by, now, False)
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
    audit.record(session, edition, list_row, "note", _detail(note), by=by, now=now)
    return NoteChange(edition.id, list_row.name, edition.date, note, rerendered, by, now, True)
