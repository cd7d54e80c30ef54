"""Shared set-up for the feedback tests: a signing key pair, SendGrid-shaped events, and a small newsroom.

Every address and article here is fictional (example.org / example.com), written for these tests.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.audience.lists import new_list_row
from digest.config import Settings, load_settings
from digest.feedback.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER
from digest.models import Article
from digest.store.articles import upsert_article
from digest.store.tables import (
    AuditRow,
    DeliveryRow,
    EditionRow,
    EventRow,
    MailingListRow,
    SubscriberRow,
    SuppressionRow,
    VariantRow,
)

_ids = itertools.count(1)


class Signer:
    """A SendGrid-style signing key: what SendGrid holds; the test gives digest only the public half."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_b64(self) -> str:
        der = self.private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode("ascii")

    @property
    def public_pem(self) -> str:
        return self.private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()

    def headers(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.private.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"), TIMESTAMP_HEADER: ts,
                "Content-Type": "application/json"}


def sg_event(event: str, email: str, *, edition_id: int | None = None, subscriber_id: int | None = None,
             at: datetime | None = None, sg_event_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """One event as SendGrid posts it; custom_args arrive as top-level string fields."""
    data: dict[str, Any] = {
        "email": email, "event": event,
        "timestamp": int((at or datetime.now(UTC)).timestamp()),
        "sg_event_id": sg_event_id or f"evt-{next(_ids)}-{event}",
        "sg_message_id": f"msg-{next(_ids)}.filter0001",
    }
    if edition_id is not None:
        data["edition_id"] = str(edition_id)
    if subscriber_id is not None:
        data["subscriber_id"] = str(subscriber_id)
    data.update(extra)
    return data


def body_of(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events).encode("utf-8")


def settings_for(tmp_path: Path, db_url: str, **changes: Any) -> Settings:
    return load_settings(cwd=tmp_path, environ={}).replace(database_url=db_url, **changes)


@dataclass
class World:
    """Two lists; alice is on both. Three editions of `daily`, each with one variant of the three articles."""

    daily: int
    weekly: int
    subs: dict[str, int]  # "alice@daily", "alice@weekly", "bob@daily", "carol@daily"
    editions: list[int]
    articles: dict[str, str]  # short name -> article id
    urls: dict[str, str] = field(default_factory=dict)

    def sub(self, who: str) -> int:
        return self.subs[who]


ADDRESSES = {"alice": "Alice@Example.org", "bob": "bob@example.org", "carol": "carol@example.org"}
ARTICLES = {
    "harbour": ("Harbour bridge reopens after repairs", "https://news.example.com/2024/harbour-bridge",
                ["local", "transport"]),
    "budget": ("Council passes the city budget", "https://news.example.com/2024/budget?id=7", ["politics"]),
    "derby": ("Derby ends in a draw", "https://news.example.com/2024/derby", ["sports"]),
}
EDITION_DATE = date(2024, 5, 1)


def build_world(session: Session, settings: Settings) -> World:
    daily = new_list_row(settings, "daily")
    weekly = new_list_row(settings, "weekly")
    session.add_all([daily, weekly])
    session.flush()
    subs: dict[str, int] = {}
    for who, lists in (("alice", (daily, weekly)), ("bob", (daily,)), ("carol", (daily,))):
        for lst in lists:
            row = SubscriberRow(list_id=lst.id, email=ADDRESSES[who], email_key=ADDRESSES[who].lower(),
                                status="active", active_since=datetime(2024, 1, 1, tzinfo=UTC))
            session.add(row)
            session.flush()
            subs[f"{who}@{lst.name}"] = row.id
    articles: dict[str, str] = {}
    for short, (title, url, topics) in ARTICLES.items():
        article = Article(id=f"art-{short}", title=title, url=url, topics=topics, outlet="Example Gazette",
                          published_at=datetime(2024, 4, 30, 6, tzinfo=UTC))
        upsert_article(session, article)
        articles[short] = article.id
    editions = []
    for offset in range(3):
        day = EDITION_DATE + timedelta(days=offset)
        cutoff = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
        edition = EditionRow(list_id=daily.id, date=day, status="sent", window_start=cutoff - timedelta(days=1),
                             cutoff_at=cutoff, frozen_at=cutoff)
        session.add(edition)
        session.flush()
        session.add(VariantRow(edition_id=edition.id, key=f"v{offset}", article_ids=list(articles.values())))
        for who in ("alice", "bob", "carol"):
            session.add(DeliveryRow(edition_id=edition.id, subscriber_id=subs[f"{who}@daily"],
                                    email=ADDRESSES[who], status="sent", sent_at=cutoff))
        editions.append(edition.id)
    session.flush()
    return World(daily=daily.id, weekly=weekly.id, subs=subs, editions=editions, articles=articles,
                 urls={k: v[1] for k, v in ARTICLES.items()})


def snapshot(session: Session) -> dict[str, Any]:
    """Everything a webhook could change, to assert a refused request changed nothing."""
    def count(table: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)

    return {
        "events": count(EventRow), "audit": count(AuditRow), "suppressions": count(SuppressionRow),
        "lists": count(MailingListRow),
        "subscribers": sorted((r.id, r.status, r.soft_bounces) for r in session.scalars(select(SubscriberRow))),
    }


def status_of(session: Session, subscriber_id: int) -> str:
    row = session.get(SubscriberRow, subscriber_id)
    assert row is not None
    return row.status
