"""Subscribing from the public form or API, confirming, unsubscribing, and changing preferences.

The answer to a subscribe request never tells whether an address is already known: new, pending, active and
suppressed addresses all get the same reply, and only the mailbox's owner learns more (from the email). A request
never changes a known subscriber's data or status; only the confirmation link, which proves the mailbox, does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.audience import throttle
from digest.audience.lifecycle import (
    SUPPRESSING_STATUSES,
    change_status,
    email_hash,
    email_key,
    is_suppressed,
    last_audit_id,
    record_created,
)
from digest.audience.links import Resolved
from digest.audience.subscribers import find, unsubscribe
from digest.audience.validate import Invalid, check_language, check_timezone, parse_topics
from digest.config import Settings
from digest.feedback.process import record_link_unsubscribe
from digest.store.tables import MailingListRow, SubscriberRow


class RateLimited(Exception):
    """Too many requests from one IP, or for one address; the reply is the same 429 either way."""


@dataclass
class Outcome:
    """What a subscribe request did. ``confirm`` is set when a confirmation email is to be sent after commit."""

    kind: str  # "pending", "active", "known", "ignored"
    confirm: tuple[int, str, str | None, int] | None = None  # (subscriber id, email, name, version)


def count_ip(session: Session, settings: Settings, ip: str, now: datetime | None = None) -> None:
    if throttle.hit(session, "subscribe_ip", ip or "unknown", fmt=throttle.HOURLY, now=now) \
            > settings.subscribe_rate_per_ip:
        raise RateLimited("too many subscribe requests from this address; try again in an hour")


def count_address(session: Session, settings: Settings, email: str, now: datetime | None = None) -> None:
    # Counted for every request, known address or not, so the 429 itself reveals nothing.
    if throttle.hit(session, "subscribe_address", email_hash(email), fmt=throttle.DAILY, now=now) \
            > settings.subscribe_rate_per_address:
        raise RateLimited("too many subscribe requests for this email address today; try again tomorrow")


def subscribe(session: Session, list_row: MailingListRow, email: str, *, name: str | None = None,
              topics: list[str] | None = None, source: str = "web", now: datetime | None = None) -> Outcome:
    """Handle a validated subscribe request (rate limits already counted)."""
    now = now or datetime.now(UTC)
    if is_suppressed(session, email):
        return Outcome("ignored")
    row = find(session, list_row, email)
    if row is None:
        row = SubscriberRow(list_id=list_row.id, email=email, email_key=email_key(email), name=name,
                            status="pending", topics=topics or [], source=source, created_at=now)
        try:
            with session.begin_nested():
                record_created(session, row, actor="web:subscribe", reason="subscribe form", now=now)
        except IntegrityError:
            # A concurrent request for the same address (a double-clicked button) created it first: from here
            # on it is a known subscriber, handled as such below, instead of an error page.
            row = find(session, list_row, email)
            if row is None:
                raise
        else:
            if not list_row.double_opt_in:
                change_status(session, row, "active", actor="web:subscribe", reason="single opt-in list", now=now)
                return Outcome("active")
            session.flush()
            return Outcome("pending", (row.id, row.email, row.name, last_audit_id(session, row.id)))
    if row.status == "active":
        return Outcome("known")
    if row.status == "pending" and not list_row.double_opt_in:
        change_status(session, row, "active", actor="web:subscribe", reason="single opt-in list", now=now)
        return Outcome("active")
    # Pending, or left earlier: coming back needs the mailbox's confirmation, even on a single opt-in list.
    return Outcome("pending", (row.id, row.email, row.name, last_audit_id(session, row.id)))


@dataclass
class ConfirmResult:
    kind: str  # "confirmed", "already", "stale"


def confirm(session: Session, resolved: Resolved, now: datetime | None = None) -> ConfirmResult:
    """Activate the subscriber a confirmation link was made for, if nothing changed since it was made."""
    row = resolved.subscriber
    if row.status == "active":
        return ConfirmResult("already")
    if resolved.token.version != last_audit_id(session, row.id) or is_suppressed(session, row.email):
        return ConfirmResult("stale")
    reason = "confirmed by email link" + (" (resubscribed)" if row.status in SUPPRESSING_STATUSES else "")
    change_status(session, row, "active", actor="web:confirm", reason=reason, now=now)
    return ConfirmResult("confirmed")


def unsubscribe_via_link(session: Session, resolved: Resolved, *, one_click: bool,
                         now: datetime | None = None) -> bool:
    actor = "web:one-click" if one_click else "web:unsubscribe-page"
    reason = "RFC 8058 one-click unsubscribe" if one_click else "unsubscribe page"
    changed = unsubscribe(session, resolved.subscriber, actor=actor, reason=reason, now=now)
    if changed:
        # Statistics count it against the last edition they were sent (the provider never sees our link).
        record_link_unsubscribe(session, resolved.subscriber, how=reason, now=now)
    return changed


class PreferenceInvalid(Invalid):
    """One field of the preference form is wrong: ``field`` and the ``value`` sent say which, for the page to
    explain in the reader's language."""

    def __init__(self, field: str, value: str, message: str) -> None:
        super().__init__(message)
        self.field, self.value = field, value


def update_preferences(resolved: Resolved, *, topics: list[str], timezone_: str, paused: bool,
                       language: str | None = None) -> None:
    """Save the preference centre's form; raises PreferenceInvalid naming the field that is wrong, and then
    changes nothing. ``language`` empty: the list's; None: left as it is."""
    list_row, row = resolved.list_row, resolved.subscriber
    try:
        chosen = parse_topics(topics, list_row.topics) if list_row.topics else []
    except Invalid as exc:
        raise PreferenceInvalid("topics", ",".join(topics), f"topics: {exc}") from None
    tz = timezone_.strip()
    if tz:
        try:
            tz = check_timezone(tz)
        except Invalid as exc:
            raise PreferenceInvalid("timezone", tz, f"time zone: {exc}") from None
    tag = (language or "").strip()
    if tag:
        try:
            tag = check_language(tag)
        except Invalid as exc:
            raise PreferenceInvalid("language", tag, f"language: {exc}") from None
    row.topics = chosen
    row.timezone = tz or None
    if language is not None:
        row.language = tag or None
    row.paused = paused


def resubscribe_via_preferences(session: Session, resolved: Resolved, now: datetime | None = None) -> bool:
    """The preference link proves the mailbox, so a person who unsubscribed may come back from there."""
    row = resolved.subscriber
    if row.status != "unsubscribed" or is_suppressed(session, row.email):
        return False
    return change_status(session, row, "active", actor="web:preferences", reason="resubscribed from preferences",
                         now=now)
