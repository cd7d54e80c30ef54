"""Per-edition statistics, a list's trend, and clicks per topic for ranking's engagement signal.

Counts are people, not events: "opened" is how many recipients opened at least once, by their own hand:
opens a machine made (`digest.feedback.machine`) are "machine_opened", and no rate uses them. A recipient is identified
by address (falling back to the subscriber id), so a second open or a provider retry does not count twice.
Counts from rows that `digest db prune` removed live on in ``edition_totals`` and are added back here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, cast, func, select, union
from sqlalchemy.orm import Session

from digest.errors import NotFound
from digest.feedback.events import EventType
from digest.store.tables import (
    ArticleRow,
    DeliveryRow,
    EditionRow,
    EditionTotalsRow,
    EventRow,
    MailingListRow,
)

COUNT_NAMES = ("sent", "delivered", "bounced", "complained", "unsubscribed", "opened", "machine_opened", "clicked")
_EVENT_COUNTS = {
    EventType.DELIVERED.value: "delivered",
    EventType.BOUNCED.value: "bounced",
    EventType.COMPLAINED.value: "complained",
    EventType.UNSUBSCRIBED.value: "unsubscribed",
    EventType.OPENED.value: "opened",
    EventType.MACHINE_OPENED.value: "machine_opened",
    EventType.CLICKED.value: "clicked",
}
_RECIPIENT = func.coalesce(EventRow.email_key, cast(EventRow.subscriber_id, String), EventRow.provider_event_id)


@dataclass
class ArticleClicks:
    article_id: str
    title: str | None
    url: str | None
    clicks: int
    clickers: int

    def to_json(self) -> dict[str, Any]:
        return {"article_id": self.article_id, "title": self.title, "url": self.url, "clicks": self.clicks,
                "clickers": self.clickers}


@dataclass
class EditionStats:
    edition_id: int
    list_name: str
    date: date
    status: str
    counts: dict[str, int]
    top_articles: list[ArticleClicks] = field(default_factory=list)

    @property
    def rates(self) -> dict[str, float | None]:
        c = self.counts
        return {
            "delivery_rate": _rate(c["delivered"], c["sent"]),
            "bounce_rate": _rate(c["bounced"], c["sent"]),
            "complaint_rate": _rate(c["complained"], c["delivered"]),
            "unsubscribe_rate": _rate(c["unsubscribed"], c["delivered"]),
            "open_rate": _rate(c["opened"], c["delivered"]),
            "click_rate": _rate(c["clicked"], c["delivered"]),
            "click_to_open_rate": _rate(c["clicked"], c["opened"]),
        }

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"edition_id": self.edition_id, "list": self.list_name,
                                "date": self.date.isoformat(), "status": self.status}
        data.update({name: int(self.counts[name]) for name in COUNT_NAMES})
        data["rates"] = self.rates
        data["top_articles"] = [a.to_json() for a in self.top_articles]
        return data


def _rate(part: int, whole: int) -> float | None:
    # No denominator (an SMTP send reports no deliveries) is "unknown", not 0 %.
    return round(part / whole, 4) if whole else None


def live_counts(session: Session, edition_id: int) -> dict[str, Any]:
    """Counts from the rows still in the store: the eight counts, plus ``articles`` (per-article clicks), the
    shape `prune` folds into ``edition_totals``."""
    counts: dict[str, Any] = {name: 0 for name in COUNT_NAMES}
    counts["sent"] = session.scalar(select(func.count()).select_from(DeliveryRow).where(
        DeliveryRow.edition_id == edition_id, DeliveryRow.status == "sent")) or 0
    for type_, n in session.execute(
            select(EventRow.type, func.count(func.distinct(_RECIPIENT)))
            .where(EventRow.edition_id == edition_id, EventRow.type.in_(list(_EVENT_COUNTS)))
            .group_by(EventRow.type)):
        counts[_EVENT_COUNTS[type_]] = int(n)
    articles: dict[str, dict[str, int]] = {}
    for article_id, clicks, clickers in session.execute(
            select(EventRow.article_id, func.count(), func.count(func.distinct(_RECIPIENT)))
            .where(EventRow.edition_id == edition_id, EventRow.type == EventType.CLICKED.value,
                   EventRow.article_id.is_not(None))
            .group_by(EventRow.article_id)):
        articles[str(article_id)] = {"clicks": int(clicks), "clickers": int(clickers)}
    counts["articles"] = articles
    return counts


def merge_counts(total: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """``total + more``, for folding pruned rows into edition_totals (and adding those totals back)."""
    merged: dict[str, Any] = {name: int(total.get(name, 0)) + int(more.get(name, 0)) for name in COUNT_NAMES}
    articles: dict[str, dict[str, int]] = {}
    for source in (total.get("articles") or {}, more.get("articles") or {}):
        for article_id, n in source.items():
            slot = articles.setdefault(article_id, {"clicks": 0, "clickers": 0})
            slot["clicks"] += int(n.get("clicks", 0))
            slot["clickers"] += int(n.get("clickers", 0))
    merged["articles"] = articles
    return merged


def edition_stats(session: Session, edition: EditionRow | int, *, top: int = 5) -> EditionStats:
    row = edition if isinstance(edition, EditionRow) else session.get(EditionRow, edition)
    if row is None:
        raise NotFound(f"no edition with id {edition} (see `digest stats --list LIST`)")
    counts = live_counts(session, row.id)
    totals = session.get(EditionTotalsRow, row.id)
    if totals is not None:
        counts = merge_counts(totals.counts or {}, counts)
    list_name = session.scalar(select(MailingListRow.name).where(MailingListRow.id == row.list_id)) or ""
    return EditionStats(edition_id=row.id, list_name=list_name, date=row.date, status=row.status,
                        counts={name: int(counts[name]) for name in COUNT_NAMES},
                        top_articles=_top_articles(session, counts["articles"], top))


def _top_articles(session: Session, articles: dict[str, dict[str, int]], top: int) -> list[ArticleClicks]:
    ranked = sorted(articles.items(), key=lambda kv: (-kv[1]["clickers"], -kv[1]["clicks"], kv[0]))[:top]
    if not ranked:
        return []
    info = {r.id: r for r in session.scalars(select(ArticleRow).where(ArticleRow.id.in_([a for a, _ in ranked])))}
    return [ArticleClicks(article_id=a, title=info[a].title if a in info else None,
                          url=info[a].url if a in info else None, clicks=n["clicks"], clickers=n["clickers"])
            for a, n in ranked]


def list_trend(session: Session, list_id: int, *, last: int = 10, top: int = 5) -> list[EditionStats]:
    """Stats of the list's last ``last`` editions that went out (or have anything to count), newest first."""
    with_data = union(
        select(DeliveryRow.edition_id),
        select(EventRow.edition_id).where(EventRow.edition_id.is_not(None)),
        select(EditionTotalsRow.edition_id),
    ).subquery()
    editions = session.scalars(
        select(EditionRow).where(EditionRow.list_id == list_id, EditionRow.id.in_(select(with_data.c[0])))
        .order_by(EditionRow.date.desc(), EditionRow.id.desc()).limit(last))
    return [edition_stats(session, e, top=top) for e in editions]


def clicks_per_topic(session: Session, list_id: int, *, since: datetime | None = None) -> dict[str, float]:
    """How much the list's readers click each topic, scaled so the most-clicked topic is 1.0 (ranking's
    engagement signal). Unique clickers per article are summed per topic, so one enthusiast clicking the same
    link ten times does not tilt the list's ranking."""
    per_article: Counter[str] = Counter()
    query = (select(EventRow.article_id, func.count(func.distinct(_RECIPIENT)))
             .join(EditionRow, EditionRow.id == EventRow.edition_id)
             .where(EditionRow.list_id == list_id, EventRow.type == EventType.CLICKED.value,
                    EventRow.article_id.is_not(None))
             .group_by(EventRow.article_id))
    totals_query = (select(EditionTotalsRow.counts).join(EditionRow, EditionRow.id == EditionTotalsRow.edition_id)
                    .where(EditionRow.list_id == list_id))
    if since is not None:
        query = query.where(EventRow.occurred_at >= since)
        totals_query = totals_query.where(EditionRow.cutoff_at >= since)
    for article_id, clickers in session.execute(query):
        per_article[str(article_id)] += int(clickers)
    for counts in session.scalars(totals_query):
        for article_id, n in ((counts or {}).get("articles") or {}).items():
            per_article[article_id] += int(n.get("clickers", 0))
    if not per_article:
        return {}
    per_topic: Counter[str] = Counter()
    for article_id, topics in session.execute(
            select(ArticleRow.id, ArticleRow.topics).where(ArticleRow.id.in_(sorted(per_article)))):
        for topic in topics or []:
            per_topic[str(topic)] += per_article[article_id]
    peak = max(per_topic.values(), default=0)
    if peak <= 0:
        return {}
    return {topic: round(n / peak, 4) for topic, n in sorted(per_topic.items())}
