"""The period of articles an edition covers: [start, end).

Start is where the previous edition that went out (froze, and was not skipped or cancelled) ended, or the cut-off
minus ``first_edition_lookback_hours`` when none did; end is the cut-off, or the moment the edition froze if that
was earlier. Kept apart from ``dates`` because it depends on what earlier editions did, not on the calendar.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.store.tables import EditionRow, MailingListRow

# Statuses of an edition that did not go out, even if it froze: it does not end the next edition's window.
NOT_SENT_STATUSES = ("skipped", "cancelled")


def window_end(edition: EditionRow) -> datetime:
    if edition.frozen_at is not None and edition.frozen_at < edition.cutoff_at:
        return edition.frozen_at
    return edition.cutoff_at


def window_start(session: Session, settings: Settings, list_row: MailingListRow, day: date,
                 cutoff: datetime) -> datetime:
    """Where the window of the list's edition for ``day`` (cut off at ``cutoff``) begins."""
    # Only an edition that went out ends a window: a draft nobody sent, or an edition skipped (a thin day) or
    # cancelled, must not swallow its articles, so the next edition that does go out covers them. What a
    # cancelled edition did deliver is excluded anyway, through edition_articles.
    previous = session.scalar(
        select(EditionRow)
        .where(EditionRow.list_id == list_row.id, EditionRow.date < day, EditionRow.frozen_at.is_not(None),
               EditionRow.status.not_in(NOT_SENT_STATUSES))
        .order_by(EditionRow.date.desc()).limit(1))
    if previous is not None:
        return min(window_end(previous), cutoff)
    return cutoff - timedelta(hours=float(settings.first_edition_lookback_hours))
