"""Which date an edition is for and the moment it is cut off: the list's send time on that date in its zone.

Pure reading: nothing here writes. ``upcoming_date`` is the one rule for "the next edition" that `digest rank`,
`digest build`, the desk and the preview share.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.errors import ConfigError
from digest.store.tables import EditionRow, MailingListRow
from digest.timeutil import list_zone, resolve_local

# Editions past these states will not go out (again): the upcoming edition is a later one.
_DONE_STATUSES = frozenset({"sending", "sent", "cancelled", "skipped"})


def parse_send_time(list_row: MailingListRow) -> time:
    value = list_row.send_time or "07:00"
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ConfigError(f"list {list_row.name!r}: send_time must be HH:MM, not {value!r}") from None


def cutoff_for(list_row: MailingListRow, day: date) -> datetime:
    """The list's send time on ``day`` in its own zone, in UTC. A send time that clocks skip that day resolves to
    the next minute that exists, as the scheduler reads it (`digest.timeutil.resolve_local`)."""
    return resolve_local(day, parse_send_time(list_row), list_zone(list_row))


def local_today(list_row: MailingListRow, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(list_zone(list_row)).date()


def upcoming_date(session: Session, settings: Settings, list_row: MailingListRow,
                  now: datetime | None = None) -> date:
    """The next edition to go out: today's in the list's time zone, unless it went out already or its send time
    is more than ``catch_up_hours`` past (the scheduler skips it then); else the next day's. One rule for
    `digest rank`, `digest build` and the preview."""
    now = now or datetime.now(UTC)
    day = local_today(list_row, now)
    done = set(session.scalars(select(EditionRow.date).where(
        EditionRow.list_id == list_row.id, EditionRow.date >= day, EditionRow.status.in_(_DONE_STATUSES))))
    late = timedelta(hours=float(settings.catch_up_hours))
    while day in done or cutoff_for(list_row, day) + late < now:
        day += timedelta(days=1)
    return day
