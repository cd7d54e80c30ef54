"""`digest build`'s library side: pick the edition's selection and reader, render, write the four files."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from digest import editions
from digest.audience import subscribers
from digest.config import Settings
from digest.errors import NotFound
from digest.models import Selection
from digest.render.edition import RenderedEdition, render_selection
from digest.render.message import build_message
from digest.render.personalize import Recipient, personalize, recipient_for, sample_recipient
from digest.store.tables import MailingListRow, SubscriberRow


@dataclass
class BuildResult:
    list_name: str
    edition_date: date
    recipient: str
    rendered: RenderedEdition
    html_bytes: int
    files: dict[str, Path] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        r = self.rendered
        return {
            "list": self.list_name, "date": self.edition_date.isoformat(), "recipient": self.recipient,
            "subject": r.subject, "preheader": r.preheader, "articles": r.article_count,
            "article_ids": list(r.article_ids), "size_bytes": self.html_bytes, "max_html_bytes": r.max_html_bytes,
            "trimmed": r.trimmed, "files": {k: str(v) for k, v in self.files.items()},
        }


def pick_subscriber(session: Session, list_row: MailingListRow, email: str | None) -> SubscriberRow | None:
    """The subscriber asked for (NotFound if not on the list), else the list's first subscriber who receives
    editions (active, not paused), else None."""
    if email:
        row = subscribers.find(session, list_row, email)
        if row is None:
            raise NotFound(f"{email}: not a subscriber of list {list_row.name!r} (see `digest subscribers ls`)")
        return row
    return session.scalar(subscribers.recipients(list_row).limit(1))


def selection_for(session: Session, settings: Settings, list_row: MailingListRow, edition_date: date,
                  topics: list[str] | None = None, language: str | None = None) -> Selection:
    """The edition's selection for a reader with ``topics`` (none: the list's topics) and ``language`` (none:
    the list's)."""
    edition = editions.get_or_create_edition(session, settings, list_row, edition_date)
    return editions.select_for(session, settings, edition, topics, language=language)


def build_edition(session: Session, settings: Settings, list_row: MailingListRow, edition_date: date, *,
                  subscriber_email: str | None, out_dir: Path) -> BuildResult:
    subscriber = pick_subscriber(session, list_row, subscriber_email)
    if subscriber is not None:
        recipient: Recipient = recipient_for(settings, list_row.id, subscriber.id, subscriber.email, subscriber.name)
        topics = list(subscriber.topics or [])
    else:
        recipient = sample_recipient(settings, list_row.id)
        topics = []
    language = subscribers.effective_language(subscriber, list_row, settings)
    selection = selection_for(session, settings, list_row, edition_date, topics, language)
    rendered = render_selection(settings, list_row, edition_date, selection)
    _, html, text = personalize(rendered, recipient)
    eml = build_message(settings, list_row, rendered, recipient)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{list_row.name}-{edition_date.isoformat()}"
    files = {"html": out_dir / f"{stem}.html", "txt": out_dir / f"{stem}.txt", "mjml": out_dir / f"{stem}.mjml",
             "eml": out_dir / f"{stem}.eml"}
    files["html"].write_text(html, encoding="utf-8")
    files["txt"].write_text(text, encoding="utf-8")
    files["mjml"].write_text(rendered.mjml, encoding="utf-8")
    files["eml"].write_bytes(eml)
    return BuildResult(list_row.name, edition_date, recipient.email, rendered, len(html.encode("utf-8")), files)
