"""SendGrid's Signed Event Webhook: verify the signature, then (only then) normalize the JSON array of events.

SendGrid signs ``timestamp header value + raw body bytes`` with ECDSA P-256 / SHA-256 and sends the base64 DER
signature in ``X-Twilio-Email-Event-Webhook-Signature``. Nothing in the body is looked at before `verify` passes:
the webhook is a door open to the internet.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from digest.errors import ConfigError, DigestError
from digest.feedback.events import BounceType, EventType, RejectReason, TrackingEvent

PROVIDER = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

EVENT_TYPES: dict[str, EventType] = {
    "processed": EventType.QUEUED,
    "delivered": EventType.DELIVERED,
    "deferred": EventType.DEFERRED,
    "bounce": EventType.BOUNCED,
    "dropped": EventType.DROPPED,
    "spamreport": EventType.COMPLAINED,
    "unsubscribe": EventType.UNSUBSCRIBED,
    "group_unsubscribe": EventType.UNSUBSCRIBED,
    "group_resubscribe": EventType.SUBSCRIBED,
    "open": EventType.OPENED,
    "click": EventType.CLICKED,
}

# SendGrid's documented drop reasons. "Invalid SMTPAPI header" is our request's fault, not the address's, so
# reasons are matched whole rather than by prefix.
DROP_REASONS: dict[str, RejectReason] = {
    "invalid": RejectReason.INVALID,
    "invalid address": RejectReason.INVALID,
    "bounced address": RejectReason.BOUNCED,
    "spam reporting address": RejectReason.SPAM,
    "unsubscribed address": RejectReason.UNSUBSCRIBED,
    "unsubscribed group": RejectReason.UNSUBSCRIBED,
}


class WebhookRejected(DigestError):
    """The request is not provably from SendGrid (bad or missing signature, stale timestamp): answer 403."""


class PayloadError(DigestError):
    """A correctly signed body that is not SendGrid's JSON array of event objects: answer 400."""


@functools.lru_cache(maxsize=8)
def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid's settings page shows it (base64 DER SubjectPublicKeyInfo), or PEM."""
    text = text.strip()
    if not text:
        raise ConfigError("sendgrid_webhook_public_key is empty: copy the key from SendGrid's Event Webhook "
                          "settings (Signed Event Webhook) into digest.toml or DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY")
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = load_pem_public_key(text.encode("ascii"))
        else:
            key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
        raise ConfigError(f"sendgrid_webhook_public_key: not a base64 DER or PEM public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError("sendgrid_webhook_public_key: SendGrid signs with ECDSA P-256; this is another kind of key")
    return key


def verify(public_key: ec.EllipticCurvePublicKey, headers: Mapping[str, str], body: bytes, *,
           now: datetime, tolerance_seconds: int) -> None:
    """Raise `WebhookRejected` unless ``body`` carries a valid, fresh SendGrid signature."""
    signature = headers.get(SIGNATURE_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise WebhookRejected(f"missing {SIGNATURE_HEADER if not signature else TIMESTAMP_HEADER} header")
    check_timestamp(timestamp, now=now, tolerance_seconds=tolerance_seconds)
    try:
        der = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected(f"{SIGNATURE_HEADER} is not base64") from None
    try:
        public_key.verify(der, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise WebhookRejected("signature does not match the body and timestamp") from None


def check_timestamp(timestamp: str, *, now: datetime, tolerance_seconds: int) -> None:
    # SendGrid signs every delivery attempt afresh, so an old timestamp means a captured request being replayed.
    # The future side is bounded too: a skewed clock should not widen the replay window.
    try:
        signed_at = int(timestamp.strip())
    except ValueError:
        raise WebhookRejected(f"{TIMESTAMP_HEADER} is not a Unix time") from None
    if abs(now.timestamp() - signed_at) > tolerance_seconds:
        raise WebhookRejected(f"{TIMESTAMP_HEADER} is more than {tolerance_seconds} s from now")


def parse_events(body: bytes, *, received_at: datetime) -> list[TrackingEvent]:
    """Normalize a verified body. The array's shape must be right; odd fields inside an event are tolerated, since
    refusing the batch would only make SendGrid retry it for 24 hours."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body: not JSON ({exc})") from None
    if not isinstance(data, list):
        raise PayloadError("body: expected a JSON array of events")
    events = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise PayloadError(f"body[{index}]: expected an event object, got {type(item).__name__}")
        events.append(normalize(item, received_at=received_at))
    return events


def normalize(raw: dict[str, Any], *, received_at: datetime) -> TrackingEvent:
    esp_event = str(raw.get("event") or "")
    type_ = EVENT_TYPES.get(esp_event, EventType.UNKNOWN)
    if type_ == EventType.OPENED and _flag(raw.get("sg_machine_open")):
        type_ = EventType.MACHINE_OPENED  # SendGrid's own verdict (Apple Mail Privacy Protection and the like)
    bounce_type: BounceType | None = None
    reject_reason: RejectReason | None = None
    reason = _text(raw.get("reason")) or _text(raw.get("response"))
    if type_ == EventType.BOUNCED:
        # SendGrid marks a temporary refusal as a bounce of type "blocked"; a plain bounce is permanent.
        bounce_type = BounceType.SOFT if str(raw.get("type") or "").lower() == "blocked" else BounceType.HARD
        reject_reason = RejectReason.BLOCKED if bounce_type == BounceType.SOFT else RejectReason.BOUNCED
    elif type_ == EventType.DEFERRED:
        bounce_type = BounceType.SOFT
    elif type_ == EventType.DROPPED:
        reject_reason = DROP_REASONS.get((reason or "").strip().lower(), RejectReason.OTHER)
    return TrackingEvent(
        provider=PROVIDER,
        provider_event_id=_text(raw.get("sg_event_id")) or _fallback_id(raw),
        type=type_,
        timestamp=_timestamp(raw.get("timestamp")) or received_at,
        email=_text(raw.get("email")),
        # custom_args of the personalization come back as top-level fields, always as strings.
        edition_id=_int(raw.get("edition_id")),
        subscriber_id=_int(raw.get("subscriber_id")),
        url=_text(raw.get("url")) if type_ == EventType.CLICKED else None,
        reason=reason,
        bounce_type=bounce_type,
        reject_reason=reject_reason,
        esp_event=esp_event or None,
        message_id=_text(raw.get("sg_message_id")),
        raw=raw,
    )


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1")


def _fallback_id(raw: dict[str, Any]) -> str:
    # Every real SendGrid event has sg_event_id; without one, the event's own content is the only stable identity,
    # which still lets a retried delivery of it count once.
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)[:2000]


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    # The store's ids are 32-bit integers on PostgreSQL; anything larger cannot be one of ours.
    return number if 0 < number < 2**31 else None


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
