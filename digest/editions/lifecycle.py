"""The edition row from draft to frozen, and the candidates each state offers.

A draft's window follows the list (its send time, the editions that went out before it); ``freeze`` (when the
first delivery goes out) stores the ids of the window's articles in ``pool``, and from then on every selection
of the edition, including a variant first needed hours later, comes from that pool. ``candidate_pool`` is the
reading side of that rule, so the two live together.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.editions.dates import cutoff_for
from digest.editions.history import sent_by_other_editions
from digest.editions.window import window_start
from digest.models import Article
from digest.store.articles import list_articles
from digest.store.tables import EditionRow, MailingListRow


def _find_edition(session: Session, list_id: int, day: date) -> EditionRow | None:
    return session.scalar(select(EditionRow).where(EditionRow.list_id == list_id, EditionRow.date == day))


def get_or_create_edition(session: Session, settings: Settings, list_row: MailingListRow,
                          day: date) -> EditionRow:
    """The list's edition for ``day``, created as a draft with its window if it does not exist yet.

    Safe when two processes ask at once: the (list, date) unique constraint lets one insert win, and the other
    re-reads the winner's row. A not yet frozen edition's window is recomputed, so a changed send time or an
    earlier edition that went out since is taken into account; a frozen one never changes.
    """
    cutoff = cutoff_for(list_row, day)
    start = window_start(session, settings, list_row, day, cutoff)
    row = _find_edition(session, list_row.id, day)
    if row is None:
        try:
            with session.begin_nested():
                row = EditionRow(list_id=list_row.id, date=day, status="draft", window_start=start,
                                 cutoff_at=cutoff)
                session.add(row)
        except IntegrityError:
            row = _find_edition(session, list_row.id, day)
            if row is None:
                raise
    if row.frozen_at is None and (row.window_start != start or row.cutoff_at != cutoff):
        row.window_start, row.cutoff_at = start, cutoff
        session.flush()
    return row


def candidate_pool(session: Session, edition: EditionRow, *, sent: Collection[str] | None = None) -> list[Article]:
    """The edition's candidates: its frozen pool once frozen, else the window's articles; never retracted ones,
    never ones the list sent in another edition. Newest first, then by id.

    ``sent``: ``sent_by_other_editions(session, edition)`` when the caller has it already (the ranking needs it
    too), so it is queried once."""
    if sent is None:
        sent = sent_by_other_editions(session, edition)
    if edition.frozen_at is not None:
        ids = list(edition.pool or [])
        articles = list_articles(session, ids=ids) if ids else []
    else:
        articles = list_articles(session, since=edition.window_start, until=edition.cutoff_at)
    return [a for a in articles if a.id not in sent]


def freeze(session: Session, edition: EditionRow, now: datetime) -> EditionRow:
    """Fix the edition's pool to the articles it has at ``now`` (idempotent: a frozen edition stays as it is)."""
    if edition.frozen_at is not None:
        return edition
    # Two senders freezing at once: the row lock (PostgreSQL; SQLite's writer lock already serializes) makes the
    # second one see the first one's pool instead of writing its own.
    session.flush()
    session.refresh(edition, with_for_update=True)
    if edition.frozen_at is not None:
        return edition
    end = min(now, edition.cutoff_at)
    sent = sent_by_other_editions(session, edition)
    articles = list_articles(session, since=edition.window_start, until=end) if end > edition.window_start else []
    edition.pool = sorted(a.id for a in articles if a.id not in sent)
    edition.frozen_at = now
    session.flush()
    return edition
