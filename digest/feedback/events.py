"""One typed event for every provider, in the style of django-anymail's tracking events.

Providers speak different dialects (SendGrid's ``bounce`` with ``type: blocked``, another's ``soft_bounce``); the
parsers in this package translate each into a `TrackingEvent`, so `process` decides what an event means for a
subscriber once, whatever sent it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    """What happened to a message. Values are what the store's ``events.type`` column holds."""

    QUEUED = "queued"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    REJECTED = "rejected"
    # SendGrid calls a rejection "dropped"; one stored value keeps statistics from splitting them.
    DROPPED = "rejected"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    SUBSCRIBED = "subscribed"
    OPENED = "opened"
    # An open no person made: Apple Mail Privacy Protection fetching every image on arrival, a security scanner.
    # Counted apart, so open rates and anything judged by opens rest on people.
    MACHINE_OPENED = "machine_opened"
    CLICKED = "clicked"
    UNKNOWN = "unknown"


class BounceType(StrEnum):
    """A hard bounce means the address will never work; a soft one may pass on a later try."""

    HARD = "hard"
    SOFT = "soft"


class RejectReason(StrEnum):
    """Why a provider refused to even try an address (anymail's reject_reason)."""

    INVALID = "invalid"
    BOUNCED = "bounced"
    SPAM = "spam"
    UNSUBSCRIBED = "unsubscribed"
    BLOCKED = "blocked"
    OTHER = "other"


# Reject reasons that say the address itself is bad or hostile: it must not be mailed on any list again.
SUPPRESSING_REJECTS = frozenset({RejectReason.INVALID, RejectReason.BOUNCED, RejectReason.SPAM})


@dataclass(frozen=True)
class TrackingEvent:
    """A provider event, normalized. ``raw`` keeps the provider's own object for the record."""

    provider: str
    provider_event_id: str
    type: EventType
    timestamp: datetime
    email: str | None = None
    edition_id: int | None = None
    subscriber_id: int | None = None
    url: str | None = None
    reason: str | None = None
    bounce_type: BounceType | None = None
    reject_reason: RejectReason | None = None
    esp_event: str | None = None
    message_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def is_soft_failure(self) -> bool:
        """A failure worth counting towards soft_bounce_limit, not worth suppressing on its own."""
        return self.type == EventType.DEFERRED or (
            self.type == EventType.BOUNCED and self.bounce_type == BounceType.SOFT)

    @property
    def is_hard_bounce(self) -> bool:
        return self.type == EventType.BOUNCED and self.bounce_type != BounceType.SOFT
