"""What the desk shows for one edition: its articles in order with the editor's marks, the candidates that did
not make it and why (as `digest rank --explain` says), the editor's note, the subject line and the subjects
under test (`digest editions subject-test`), the approval and the history.

Read-only: it never creates a past edition, and it says why an edition can no longer be changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest import editions
from digest.config import Settings
from digest.desk import audit
from digest.desk.actions import NOTE_RULE, find_edition, refusal, resolve_list
from digest.desk.overrides import LEFT_OUT, load_overrides
from digest.models import Selection
from digest.rank.select import ALREADY_SENT, OUTSIDE_WINDOW
from digest.render import personalize as pz
from digest.render.edition import render_selection
from digest.send import subject_test
from digest.store.articles import list_articles
from digest.store.tables import EditionRow, MailingListRow

# Reasons that mean "not a candidate of this edition at all": nothing the editor could add.
_NOT_CANDIDATES = (OUTSIDE_WINDOW, ALREADY_SENT)


@dataclass(frozen=True)
class DeskArticle:
    id: str
    title: str
    outlet: str | None
    position: int  # 1-based
    pinned: bool  # by the desk, for this edition
    pinned_everywhere: bool  # `digest articles pin`
    added: bool
    moved: bool  # placed by the editor's order

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "outlet": self.outlet, "position": self.position,
                "pinned": self.pinned, "pinned_everywhere": self.pinned_everywhere, "added": self.added,
                "moved": self.moved}


@dataclass(frozen=True)
class DeskCandidate:
    id: str
    title: str
    outlet: str | None
    reason: str
    left_out: bool

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "outlet": self.outlet, "reason": self.reason,
                "left_out": self.left_out}


@dataclass
class DeskView:
    list_name: str
    date: date
    edition_id: int | None
    status: str | None
    locked: str | None  # why it can no longer be changed; None: the editor may change it
    require_approval: bool
    approved_by: str | None
    approved_at: datetime | None
    subject: str | None
    note: str | None = None
    note_locked: str | None = None  # why the note can no longer change (it may while deliveries are planned)
    # `digest.send.subject_test.report`: each subject with its sample, clicks, opens and the winner; None: no test
    subject_test: dict[str, Any] | None = None
    articles: list[DeskArticle] = field(default_factory=list)
    candidates: list[DeskCandidate] = field(default_factory=list)
    history: list[audit.DeskEntry] = field(default_factory=list)

    @property
    def editable(self) -> bool:
        return self.locked is None

    def to_json(self) -> dict[str, Any]:
        return {"list": self.list_name, "date": self.date.isoformat(), "edition_id": self.edition_id,
                "status": self.status, "editable": self.editable, "locked": self.locked,
                "require_approval": self.require_approval, "approved_by": self.approved_by,
                "approved_at": self.approved_at, "subject": self.subject, "note": self.note,
                "note_editable": self.note_locked is None, "note_locked": self.note_locked,
                "subject_test": self.subject_test,
                "articles": [a.to_json() for a in self.articles],
                "candidates": [c.to_json() for c in self.candidates],
                "history": [h.to_json() for h in self.history]}


def _subject(settings: Settings, session: Session, list_name: str, day: date, selection: Selection) -> str | None:
    if not selection.items:
        return None
    list_row = resolve_list(session, settings, list_name)
    rendered = render_selection(settings, list_row, day, selection)  # cached: the preview renders the same
    subject, _, _ = pz.personalize(rendered, pz.sample_recipient(settings, list_row.id))
    return subject


def desk_view(session: Session, settings: Settings, list_name: str | None, day: date | None, *,
              now: datetime, with_subject: bool = True) -> DeskView:
    """The desk of the list's edition of ``day`` (default: the upcoming one). An edition not created yet is
    shown as it would be (``edition_id`` None) and is not created: looking changes nothing."""
    list_row = resolve_list(session, settings, list_name)
    known = set(session.scalars(select(EditionRow.id).where(EditionRow.list_id == list_row.id)))
    savepoint = session.begin_nested()
    try:
        view = _view(session, settings, list_row, day, now=now, with_subject=with_subject)
    except BaseException:
        savepoint.rollback()
        raise
    if view.edition_id is not None and view.edition_id not in known:
        savepoint.rollback()
        view.edition_id = None
    else:
        savepoint.commit()
    return view


def _view(session: Session, settings: Settings, list_row: MailingListRow, day: date | None, *, now: datetime,
          with_subject: bool) -> DeskView:
    day, edition, past = find_edition(session, settings, list_row, day, now=now)
    locked = refusal(session, list_row, edition, day, past)
    view = DeskView(list_row.name, day, edition.id if edition else None, edition.status if edition else None,
                    locked, bool(list_row.require_approval), edition.approved_by if edition else None,
                    edition.approved_at if edition else None, None)
    view.note_locked = refusal(session, list_row, edition, day, past, **NOTE_RULE)
    if edition is None:
        return view
    view.note = edition.editor_note
    view.subject_test = subject_test.report(session, edition.id)
    overrides = load_overrides(session, edition.id)
    selection = editions.select_for(session, settings, edition, None)
    in_edition = set(selection.article_ids)
    for n, item in enumerate(selection.items, start=1):
        a = item.article
        view.articles.append(DeskArticle(a.id, a.title, a.outlet, n, a.id in overrides.pinned, a.pinned,
                                         a.id in overrides.added, a.id in overrides.order))
    dropped = [d for d in selection.dropped if d.reason not in _NOT_CANDIDATES and d.id not in in_edition]
    found = {a.id: a for a in list_articles(session, ids=[d.id for d in dropped])} if dropped else {}
    for d in dropped:
        article = found.get(d.id)
        if article is not None:
            view.candidates.append(DeskCandidate(d.id, article.title, article.outlet, d.reason,
                                                 d.reason.startswith(LEFT_OUT)))
    view.history = audit.history(session, edition, list_row)
    if with_subject:
        view.subject = _subject(settings, session, list_row.name, day, selection)
    return view
