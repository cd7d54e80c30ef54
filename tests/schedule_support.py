"""Helpers for the scheduler tests: fictional lists, readers in several zones, articles, and what went out.

Every name, address and article here is made up for the tests.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from digest.app import App
from digest.audience.lifecycle import email_key
from digest.audience.lists import new_list_row
from digest.store.tables import DeliveryRow, EditionRow, MailingListRow, ScheduleRunRow, SubscriberRow

from . import send_support

_OUTBOX_NAME = re.compile(r"^e(\d+)-s(\d+)-")


def make_list(app: App, name: str, tz: str, send_time: str = "07:00", *, schedule: str | None = None,
              approval: bool = False) -> int:
    with app.store.session() as s:
        row = new_list_row(app.settings, name, timezone=tz, send_time=send_time)
        row.schedule = schedule
        row.require_approval = approval
        row.double_opt_in = False
        s.add(row)
        s.flush()
        return row.id


def add_reader(app: App, list_name: str, n: int, *, tz: str | None = None, send_time: str | None = None,
               active_since: datetime, status: str = "active") -> int:
    email = f"reader{n}@{list_name}.example.com"
    with app.store.session() as s:
        list_id = s.scalar(select(MailingListRow.id).where(MailingListRow.name == list_name))
        assert list_id is not None
        row = SubscriberRow(list_id=list_id, email=email, email_key=email_key(email), name=f"Reader {n}",
                            status=status, topics=[], timezone=tz, send_time=send_time, active_since=active_since)
        s.add(row)
        s.flush()
        return row.id


def add_articles(app: App, before: datetime, n: int = 4, prefix: str = "sched") -> list[str]:
    """Fictional articles published in the hours just before ``before`` (the first half an hour before it)."""
    return send_support.add_articles(app, n, before=before, prefix=prefix, first=timedelta(minutes=30),
                                     step=timedelta(minutes=45))


def outbox_counts(root: Path) -> Counter[int]:
    """Messages the file backend wrote, per subscriber id (from the file names)."""
    counts: Counter[int] = Counter()
    for path in (root / "outbox").glob("*.eml"):
        match = _OUTBOX_NAME.match(path.name)
        if match:
            counts[int(match.group(2))] += 1
    return counts


def deliveries(app: App) -> list[tuple[str, date, int, str]]:
    """(list, edition date, subscriber id, status) of every delivery row."""
    with app.store.session() as s:
        rows = s.execute(select(MailingListRow.name, EditionRow.date, DeliveryRow.subscriber_id, DeliveryRow.status)
                         .join(EditionRow, EditionRow.id == DeliveryRow.edition_id)
                         .join(MailingListRow, MailingListRow.id == EditionRow.list_id)
                         .order_by(DeliveryRow.id))
        return [(name, d, sid, status) for name, d, sid, status in rows]


def runs(app: App) -> dict[tuple[str, date], str]:
    with app.store.session() as s:
        rows = s.execute(select(MailingListRow.name, ScheduleRunRow.date, ScheduleRunRow.outcome)
                         .join(MailingListRow, MailingListRow.id == ScheduleRunRow.list_id))
        return {(name, d): outcome for name, d, outcome in rows}
