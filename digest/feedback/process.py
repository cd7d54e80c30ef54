"""Apply normalized provider events to the store: record each once, and change subscribers where an event says so.

The caller's session is the transaction: a batch is applied whole or not at all. Deduplication rests on the
events table's unique (provider, provider_event_id): an INSERT ... ON CONFLICT DO NOTHING either claims the event
(and this call applies its effects) or finds it already there (a provider retry: nothing happens). Two webhook
requests carrying the same event at once are serialized by that constraint, never both applied.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from digest.audience import lifecycle
from digest.audience.gdpr import FORGOTTEN  # the suppression reason `forget` leaves behind
from digest.config import Settings
from digest.feedback import machine
from digest.feedback.events import SUPPRESSING_REJECTS, EventType, RejectReason, TrackingEvent
from digest.hosted import article_id_from
from digest.store.tables import (
    ArticleRow,
    DeliveryRow,
    EditionArticleRow,
    EditionRow,
    EventRow,
    SubscriberRow,
    SuppressionRow,
    VariantRow,
)

# How bad a status is: an event only ever moves a subscriber up this scale, so a late "unsubscribe" cannot
# hide an earlier complaint, and a bounce does not erase the record that someone complained.
_SEVERITY = {"unsubscribed": 1, "bounced": 2, "complained": 3}
# The event fields that carry the address.
_ADDRESS_FIELDS = frozenset({"email", "smtp-id", "sg_message_id", "ip", "useragent"})


@dataclass
class ProcessResult:
    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    status_changes: int = 0
    suppressed: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def actor_for(provider: str) -> str:
    return f"{provider}-webhook"


def apply_events(session: Session, settings: Settings, events: list[TrackingEvent], *,
                 now: datetime | None = None, actor: str | None = None) -> ProcessResult:
    """Record ``events`` and apply them to subscribers, in the order they happened. ``actor`` names who reported
    them in the audit log (default: the provider's webhook)."""
    applier = _Applier(session, settings, now or datetime.now(UTC),
                       _forgotten(session, [e.email for e in events if e.email]))
    applier.fixed_actor = actor
    # Providers batch events out of order; "soft bounces in a row" only means something in time order.
    for event in sorted(events, key=lambda e: e.timestamp):
        applier.apply(event)
    return applier.result


class _Applier:
    def __init__(self, session: Session, settings: Settings, now: datetime, forgotten: set[str]) -> None:
        self.session = session
        self.limit = max(1, int(settings.soft_bounce_limit))
        self.now = now
        self.result = ProcessResult()
        self.actor = actor_for("unknown")
        self.fixed_actor: str | None = None
        self._editions: dict[int, EditionRow | None] = {}
        self._article_urls: dict[int, dict[str, str]] = {}
        self._article_ids: dict[int, set[str]] = {}
        self.forgotten = forgotten  # hashes of addresses erased on request (`forget`)

    # --- resolving what an event is about ---------------------------------------------------------------------

    def edition(self, edition_id: int | None) -> EditionRow | None:
        if edition_id is None:
            return None
        if edition_id not in self._editions:
            self._editions[edition_id] = self.session.get(EditionRow, edition_id)
        return self._editions[edition_id]

    def subscriber(self, event: TrackingEvent, edition: EditionRow | None) -> SubscriberRow | None:
        key = lifecycle.email_key(event.email) if event.email else None
        if event.subscriber_id is not None:
            row = self.session.get(SubscriberRow, event.subscriber_id)
            # An id that names someone else's address (a reused id after `forget`, a hand-made test event) must
            # not move that other person: the address the provider reports wins.
            if row is not None and (key is None or row.email_key == key):
                return row
        if key is not None and edition is not None:
            return self.session.scalar(select(SubscriberRow).where(
                SubscriberRow.list_id == edition.list_id, SubscriberRow.email_key == key))
        return None

    def article_for(self, edition: EditionRow | None, url: str | None) -> str | None:
        if edition is None or not url:
            return None
        if edition.id not in self._article_urls:
            ids: set[str] = set()
            for article_ids in self.session.scalars(select(VariantRow.article_ids)
                                                    .where(VariantRow.edition_id == edition.id)):
                ids.update(str(a) for a in article_ids or [])
            ids.update(self.session.scalars(select(EditionArticleRow.article_id)
                                            .where(EditionArticleRow.edition_id == edition.id)))
            urls: dict[str, str] = {}
            if ids:
                for article_id, article_url in self.session.execute(
                        select(ArticleRow.id, ArticleRow.url).where(ArticleRow.id.in_(sorted(ids)))):
                    if article_url:
                        urls[strip_tracking(article_url)] = article_id
            self._article_urls[edition.id] = urls
            self._article_ids[edition.id] = ids
        found = self._article_urls[edition.id].get(strip_tracking(url))
        if found is not None:
            return found
        # Articles without a page of their own are linked to `digest serve`'s hosted page (digest.hosted).
        hosted = article_id_from(url)
        return hosted if hosted in self._article_ids[edition.id] else None

    # --- recording and applying -------------------------------------------------------------------------------

    def apply(self, event: TrackingEvent) -> None:
        self.result.received += 1
        self.actor = self.fixed_actor or actor_for(event.provider)
        edition = self.edition(event.edition_id)
        subscriber = self.subscriber(event, edition)
        email = event.email or (subscriber.email if subscriber is not None else None)
        key = lifecycle.email_key(email) if email else None
        if event.type == EventType.OPENED and machine.looks_automated(
                self.session, event, edition.id if edition is not None else None, key,
                subscriber.id if subscriber is not None else None):
            event = replace(event, type=EventType.MACHINE_OPENED)
        forgotten = key is not None and lifecycle.email_hash(key) in self.forgotten
        event_id = self._insert(event, edition, subscriber, None if forgotten else key, forgotten=forgotten)
        if event_id is None:
            self.result.duplicates += 1
            return
        self.result.recorded += 1
        if forgotten:
            # Erased on request (`forget`): the event was stored without the address (see `_insert`); the
            # suppression already stops every send, and there is no one left to change.
            return
        if event.is_hard_bounce:
            self.suppress_everywhere(email, "bounced", f"hard bounce: {event.reason or 'no reason given'}")
        elif event.is_soft_failure:
            self.soft_failure(event, event_id, edition, subscriber, email, key)
        elif event.type == EventType.DELIVERED:
            for row in self.rows_for(subscriber, key):
                row.soft_bounces = 0
        elif event.type == EventType.COMPLAINED:
            self.suppress_everywhere(email, "complained", "marked the email as spam")
        elif event.type == EventType.REJECTED:
            self.rejected(event, edition, subscriber, email, key)
        elif event.type == EventType.UNSUBSCRIBED:
            self.unsubscribe(event, edition, subscriber, key, f"{event.esp_event or 'unsubscribe'} at the provider")

    def _insert(self, event: TrackingEvent, edition: EditionRow | None, subscriber: SubscriberRow | None,
                key: str | None, *, forgotten: bool) -> int | None:
        # A forgotten address is stored nowhere: not as the key (the caller passes None), nor in the payload.
        payload = {k: v for k, v in event.raw.items() if k not in _ADDRESS_FIELDS} if forgotten else event.raw
        values: dict[str, Any] = {
            "provider": event.provider, "provider_event_id": event.provider_event_id[:200],
            "type": event.type.value, "email_key": key,
            "edition_id": edition.id if edition is not None else None,
            "subscriber_id": subscriber.id if subscriber is not None else None,
            "article_id": self.article_for(edition, event.url) if event.type == EventType.CLICKED else None,
            "url": event.url, "reason": event.reason, "payload": payload, "occurred_at": event.timestamp,
            "received_at": self.now,
        }
        return _insert_once(self.session, values)

    def rows_for(self, subscriber: SubscriberRow | None, key: str | None) -> list[SubscriberRow]:
        """The subscriber the event names, or, when it names none, every subscription of the address."""
        if subscriber is not None:
            return [subscriber]
        if key is None:
            return []
        return list(self.session.scalars(select(SubscriberRow).where(SubscriberRow.email_key == key)))

    def move(self, row: SubscriberRow, status: str, reason: str) -> None:
        if _SEVERITY.get(row.status, 0) >= _SEVERITY[status]:
            return
        if lifecycle.change_status(self.session, row, status, actor=self.actor, reason=reason,
                                   now=self.now):
            self.result.status_changes += 1

    def suppress_everywhere(self, email: str | None, status: str, reason: str) -> None:
        """The address is bad or hostile: mark it on every list it is on, and never mail it again."""
        if not email:
            return
        for row in self.rows_for(None, lifecycle.email_key(email)):
            self.move(row, status, reason)
        if lifecycle.suppress(self.session, email, status, reason[:2000]):
            self.result.suppressed += 1

    def soft_failure(self, event: TrackingEvent, event_id: int, edition: EditionRow | None,
                     subscriber: SubscriberRow | None, email: str | None, key: str | None) -> None:
        if edition is not None and key is not None and self._already_failed(edition.id, event_id, key):
            # SendGrid reports a deferral on every retry of one message; one edition is one failure in the row.
            return
        rows = self.rows_for(subscriber, key)
        for row in rows:
            # Incremented in SQL, not in Python: two webhook requests at once must not lose a count.
            row.soft_bounces = SubscriberRow.soft_bounces + 1  # type: ignore[assignment]
        self.session.flush()
        worst = max((row.soft_bounces for row in rows), default=0)
        if worst >= self.limit:
            self.suppress_everywhere(email, "bounced",
                                     f"{worst} soft bounces in a row (limit {self.limit}): "
                                     f"{event.reason or 'no reason given'}")

    def _already_failed(self, edition_id: int, event_id: int, key: str) -> bool:
        earlier = self.session.scalar(select(EventRow.id).where(
            EventRow.edition_id == edition_id, EventRow.email_key == key, EventRow.id != event_id,
            or_(EventRow.type == EventType.DEFERRED.value, EventRow.type == EventType.BOUNCED.value)).limit(1))
        return earlier is not None

    def rejected(self, event: TrackingEvent, edition: EditionRow | None, subscriber: SubscriberRow | None,
                 email: str | None, key: str | None) -> None:
        reason = event.reason or "no reason given"
        if event.reject_reason in SUPPRESSING_REJECTS:
            status = "complained" if event.reject_reason == RejectReason.SPAM else "bounced"
            self.suppress_everywhere(email, status, f"dropped by the provider: {reason}")
        elif event.reject_reason == RejectReason.UNSUBSCRIBED:
            # The provider holds this address as unsubscribed and will keep dropping it; say so here too.
            self.unsubscribe(event, edition, subscriber, key, f"dropped by the provider: {reason}")

    def unsubscribe(self, event: TrackingEvent, edition: EditionRow | None, subscriber: SubscriberRow | None,
                    key: str | None, reason: str) -> None:
        if subscriber is None and edition is not None:
            # `subscriber()` already looked for the address on the edition's list: it is not on it, and an
            # unsubscribe from that list must not move the address's other subscriptions.
            return
        # Without an edition there is no list to attribute it to (an event without our custom_args): honouring
        # the wish on every list is the only reading that cannot mail someone who asked not to be.
        for row in self.rows_for(subscriber, key):
            self.move(row, "unsubscribed", reason)


OWN_PROVIDER = "digest"


def record_link_unsubscribe(session: Session, subscriber: SubscriberRow, *, how: str,
                            now: datetime | None = None) -> bool:
    """Count an unsubscribe made through our own link (List-Unsubscribe one-click, the unsubscribe page) against
    the last edition the subscriber was sent, as an ``unsubscribed`` event, so `digest stats` sees it: the
    provider never hears of these, since the List-Unsubscribe header points at `digest serve`, not at it.

    Returns False when there is nothing to attribute it to (no edition was ever sent to them) or it is recorded
    already (the event id is per subscriber and edition, so a second click counts once)."""
    edition_id = session.scalar(
        select(DeliveryRow.edition_id)
        # The address too: SQLite may have given this id to someone before (a deleted subscriber).
        .where(DeliveryRow.subscriber_id == subscriber.id, DeliveryRow.email == subscriber.email,
               DeliveryRow.status == "sent")
        .order_by(DeliveryRow.sent_at.desc(), DeliveryRow.id.desc()).limit(1))
    if edition_id is None:
        return False
    at = now or datetime.now(UTC)
    return _insert_once(session, {
        "provider": OWN_PROVIDER, "provider_event_id": f"unsubscribe:{edition_id}:{subscriber.id}",
        "type": EventType.UNSUBSCRIBED.value, "email_key": subscriber.email_key, "edition_id": edition_id,
        "subscriber_id": subscriber.id, "article_id": None, "url": None, "reason": how,
        "payload": {"event": "unsubscribe", "via": how}, "occurred_at": at, "received_at": at,
    }) is not None


def _insert_once(session: Session, values: dict[str, Any]) -> int | None:
    """INSERT the event unless its (provider, provider_event_id) is stored already; its new id, or None.
    Two transactions racing on one event are serialized by the unique constraint, never both inserted."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        stmt: Any = pg_insert(EventRow)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        stmt = sqlite_insert(EventRow)
    stmt = (stmt.values(**values)
            .on_conflict_do_nothing(index_elements=["provider", "provider_event_id"])
            .returning(EventRow.id))
    return session.execute(stmt).scalar_one_or_none()


def _forgotten(session: Session, emails: list[str]) -> set[str]:
    hashes = {lifecycle.email_hash(e) for e in emails}
    if not hashes:
        return set()
    return set(session.scalars(select(SuppressionRow.email_hash).where(
        SuppressionRow.email_hash.in_(sorted(hashes)), SuppressionRow.reason == FORGOTTEN)))


def strip_tracking(url: str) -> str:
    """A link as an article is stored: without utm_* parameters or fragment, scheme and host in lower case."""
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.lower().startswith("utm_")]
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, urlencode(query), ""))
