"""What the preview shows: each list's upcoming and past editions, and one edition built as it would be sent.

This module only reads the store and calls the pipeline's seams (``digest.editions`` for the selection,
``digest.render`` for the email); it never records a delivery.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest import editions as pipeline
from digest.audience import subscribers
from digest.audience.lists import ensure_list, get_list
from digest.config import Settings
from digest.errors import NotFound
from digest.render import personalize as pz
from digest.render.edition import render_selection
from digest.render.message import build_message
from digest.send import subject_test
from digest.store.db import Store
from digest.store.tables import EditionRow, MailingListRow, SubscriberRow


@dataclass
class PastEdition:
    date: date
    status: str


@dataclass
class ListOverview:
    name: str
    title: str | None
    upcoming: date
    upcoming_status: str | None
    past: list[PastEdition] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "title": self.title, "upcoming": self.upcoming.isoformat(),
                "upcoming_status": self.upcoming_status,
                "past": [{"date": p.date.isoformat(), "status": p.status} for p in self.past]}


def overview(session: Session, settings: Settings, now: datetime | None = None) -> list[ListOverview]:
    """Every list (the default list is created on first use, as every command does) with its editions."""
    ensure_list(session, settings)
    rows = session.scalars(select(MailingListRow).order_by(MailingListRow.name)).all()
    default = settings.default_list
    rows = sorted(rows, key=lambda r: (r.name != default, r.name))
    result: list[ListOverview] = []
    for row in rows:
        upcoming = pipeline.upcoming_date(session, settings, row, now)
        editions = session.scalars(select(EditionRow).where(EditionRow.list_id == row.id)
                                   .order_by(EditionRow.date.desc())).all()
        status = next((e.status for e in editions if e.date == upcoming), None)
        past = [PastEdition(e.date, e.status) for e in editions if e.date != upcoming]
        result.append(ListOverview(row.name, row.title, upcoming, status, past))
    return result


def subscriber_choices(session: Session, list_row: MailingListRow, limit: int = 200) -> list[tuple[str, str]]:
    """(email, label) of the list's subscribers for the "view as" picker, active ones first."""
    rows = session.scalars(select(SubscriberRow).where(SubscriberRow.list_id == list_row.id)
                           .order_by((SubscriberRow.status != "active"), SubscriberRow.email_key)
                           .limit(limit)).all()
    choices = []
    for row in rows:
        label = row.email + (f" ({row.name})" if row.name else "")
        if row.status != "active":
            label += f" [{row.status}]"
        if row.topics:
            label += " · " + ", ".join(str(t) for t in row.topics)
        choices.append((row.email, label))
    return choices


@dataclass
class PreviewEdition:
    """One edition as one reader would get it, complete with its .eml."""

    list_name: str
    date: date
    subject: str
    preheader: str
    html: str
    text: str
    mjml: str
    eml: bytes
    article_count: int
    variant_key: str
    recipient: str
    subscriber_id: int | None
    notes: list[str] = field(default_factory=list)

    @cached_property
    def headers(self) -> Message:
        return message_from_bytes(self.eml, policy=default_policy)

    @property
    def from_header(self) -> str:
        return str(self.headers.get("From", ""))

    @property
    def to_header(self) -> str:
        return str(self.headers.get("To", ""))

    def to_json(self) -> dict[str, object]:
        return {"list": self.list_name, "date": self.date.isoformat(), "subject": self.subject,
                "preheader": self.preheader, "article_count": self.article_count, "variant": self.variant_key,
                "recipient": self.recipient, "subscriber_id": self.subscriber_id, "notes": self.notes,
                "html_bytes": len(self.html.encode("utf-8")), "from": self.from_header, "to": self.to_header}


def _tested_subject(session: Session, edition_id: int, index: int) -> str:
    test = subject_test.test_of(session, edition_id)
    subjects = list(test.subjects) if test is not None else []
    if not 0 <= index < len(subjects):
        raise NotFound(f"subject: edition {edition_id} has no subject #{index + 1} under test"
                       + (f" (it tests {len(subjects)})" if subjects else " (it has no subject test)"))
    return str(subjects[index])


def build_edition(settings: Settings, store: Store, list_name: str, day: date, *, subscriber: str | None = None,
                  to: str | None = None, subject_index: int | None = None) -> PreviewEdition:
    """The edition of ``list_name`` for ``day`` as ``subscriber`` (default: the list's sample reader) gets it.

    ``to`` readdresses the message (a test send) while keeping the links of the sample reader, so a test
    recipient who clicks "unsubscribe" never unsubscribes the subscriber whose variant is being looked at.
    ``subject_index`` shows the email with that subject of the edition's subject test instead of its own, as the
    send does: the subject line is replaced, the content is the same.
    """
    with store.session() as session:
        list_row = get_list(session, list_name)
        row = subscribers.find(session, list_row, subscriber) if subscriber else None
        if subscriber and row is None:
            raise NotFound(f"subscriber: {subscriber!r} is not on the list {list_name!r}")
        edition = pipeline.get_or_create_edition(session, settings, list_row, day)
        selection = pipeline.select_for(session, settings, edition, row.topics if row else None,
                                        language=subscribers.effective_language(row, list_row, settings))
        values = (row.id, row.email, row.name) if row is not None else None
        tested = _tested_subject(session, edition.id, subject_index) if subject_index is not None else None
    rendered = render_selection(settings, list_row, day, selection)
    if tested is not None:
        rendered = dataclasses.replace(rendered, subject=tested)
    if values is not None and to is None:
        recipient = pz.recipient_for(settings, list_row.id, *values)
    else:
        recipient = pz.sample_recipient(settings, list_row.id)
        if to is not None:
            recipient = dataclasses.replace(recipient, email=to)
    subject, html, text = pz.personalize(rendered, recipient)
    eml = build_message(settings, list_row, rendered, recipient)
    notes = list(rendered.trimmed)
    if selection.thin:
        notes.append(f"thin edition: {rendered.article_count} article(s), fewer than min_articles")
    if not selection.items:
        notes.append("no articles in this edition's window yet")
    return PreviewEdition(
        list_name=list_row.name, date=day, subject=subject, preheader=rendered.preheader, html=html, text=text,
        mjml=rendered.mjml, eml=eml, article_count=rendered.article_count, variant_key=selection.key,
        recipient=recipient.email, subscriber_id=values[0] if values and to is None else None, notes=notes)
