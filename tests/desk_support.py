"""A newsroom for the desk tests: six fictional stories of distinct vocabularies (so none is another's
duplicate) in the upcoming edition's window of a list that carries at most four. Everything here is made up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from digest import editions
from digest.app import App
from digest.audience.lifecycle import email_key
from digest.audience.lists import ensure_list
from digest.models import Article
from digest.store.articles import upsert_article
from digest.store.tables import AuditRow, SubscriberRow

CONFIG = 'outbox_dir = "outbox"\nmax_articles = 4\nmin_articles = 1\nmax_per_topic = 0\n'

STORIES = [
    ("d1", "Council approves harbour bridge budget", "The city council voted to fund repairs of the old bridge."),
    ("d2", "Senate committee questions water agency", "Members pressed the director about pipeline inspections."),
    ("d3", "Rovers clinch late derby victory", "A stoppage-time header gave the Rovers a first derby win."),
    ("d4", "Marathon route changes announced", "Organisers moved the autumn start line to avoid roadworks."),
    ("d5", "Museum reopens renovated gallery", "Visitors queued early as the east wing showed restored ceilings."),
    ("d6", "Orchard growers expect record apples", "A mild spring and late rain filled the valley's cider presses."),
]


@dataclass
class Newsroom:
    app: App
    day: date
    now: datetime  # before the edition's cut-off: it is the upcoming one


def seed(app: App, *, subscribers: int = 2) -> Newsroom:
    """Stories d1..d6, newest first (d1 scores highest on freshness), and a few active subscribers."""
    now = datetime.now(UTC).replace(microsecond=0)
    with app.store.session() as session:
        list_row = ensure_list(session, app.settings)
        day = editions.upcoming_date(session, app.settings, list_row, now)
        cutoff = editions.cutoff_for(list_row, day)
        # Inside the window whenever the test runs: just before the cut-off, or before now if that is earlier.
        latest = min(cutoff, now) - timedelta(minutes=10)
        for i, (aid, title, summary) in enumerate(STORIES):
            upsert_article(session, Article(
                id=aid, title=title, outlet="Example Gazette", topics=["local"], summary=summary,
                url=f"https://news.example.org/{aid}", published_at=latest - timedelta(minutes=20 * i)))
        for i in range(subscribers):
            email = f"desk-reader{i}@example.com"
            session.add(SubscriberRow(list_id=list_row.id, email=email, email_key=email_key(email), status="active",
                                      topics=[], active_since=now - timedelta(days=2)))
    return Newsroom(app, day, now)


def selection_ids(app: App, day: date) -> list[str]:
    with app.store.session() as session:
        list_row = ensure_list(session, app.settings)
        edition = editions.get_or_create_edition(session, app.settings, list_row, day)
        return editions.select_for(session, app.settings, edition, None).article_ids


def desk_audit(app: App) -> list[tuple[str, str, str]]:
    """(action, actor, reason) of the desk's audit entries, oldest first."""
    with app.store.session() as session:
        rows = session.scalars(select(AuditRow).where(AuditRow.new_status.like("edition:%"))
                               .order_by(AuditRow.id)).all()
        return [((r.new_status or "")[len("edition:"):], r.actor, r.reason or "") for r in rows]
