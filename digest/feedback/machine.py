"""Telling a machine's open from a person's.

SendGrid flags the opens it knows are automated (``sg_machine_open``). Others are recognisable by who fetched the
tracking pixel and when: a known proxy or scanner (Apple's Mail Privacy Protection fetches from Apple's own
17.0.0.0/8; mail security gateways announce themselves in the user agent) within ``MACHINE_OPEN_SECONDS`` of the
delivery. A person behind such a proxy who opens later still counts: only the open that arrives with the
message, before anyone could have read it, is the machine's.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.feedback.events import EventType, TrackingEvent
from digest.store.tables import DeliveryRow, EventRow

MACHINE_OPEN_SECONDS = 30
# Apple Inc. holds all of 17.0.0.0/8; its privacy proxy fetches from there.
PROXY_NETWORKS = (ipaddress.ip_network("17.0.0.0/8"),)
# Security gateways and link scanners that fetch every image of an incoming message.
SCANNER_AGENTS = re.compile(r"barracuda|mimecast|proofpoint|ironport|forcepoint|trend ?micro|symantec|bingpreview",
                            re.IGNORECASE)


def from_known_proxy(ip: str | None, user_agent: str | None) -> bool:
    if user_agent and SCANNER_AGENTS.search(user_agent):
        return True
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return False
    return any(address in network for network in PROXY_NETWORKS)


def delivered_at(session: Session, edition_id: int, email_key: str | None, subscriber_id: int | None
                 ) -> datetime | None:
    """When the message reached the reader: the provider's ``delivered`` event, else our ``sent`` time."""
    if email_key is not None:
        at = session.scalar(select(func.min(EventRow.occurred_at)).where(
            EventRow.edition_id == edition_id, EventRow.email_key == email_key,
            EventRow.type == EventType.DELIVERED.value))
        if at is not None:
            return _aware(at)
    if subscriber_id is not None:
        at = session.scalar(select(DeliveryRow.sent_at).where(DeliveryRow.edition_id == edition_id,
                                                              DeliveryRow.subscriber_id == subscriber_id))
        if at is not None:
            return _aware(at)
    return None


def looks_automated(session: Session, event: TrackingEvent, edition_id: int | None, email_key: str | None,
                    subscriber_id: int | None) -> bool:
    """An open from a known proxy or scanner within seconds of the delivery."""
    raw = event.raw
    if edition_id is None or not from_known_proxy(_text(raw.get("ip")), _text(raw.get("useragent"))):
        return False
    delivered = delivered_at(session, edition_id, email_key, subscriber_id)
    if delivered is None:
        return False
    return 0 <= (_aware(event.timestamp) - delivered).total_seconds() <= MACHINE_OPEN_SECONDS


def _aware(at: datetime) -> datetime:
    # SQLite hands back naive datetimes; the store writes UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
