"""The desk's changes to an edition: pin, leave out, move, add, leave out everywhere (retract), approve.

Each change is checked before anything is written, stored in ``edition_overrides`` (what every selection of
the edition applies, see ``digest.desk.overrides``), audit-logged with who and when (``digest.desk.audit``), and
refused, with the reason, once the edition's deliveries are planned or its first delivery has gone out: from
then on what readers get must not change under them. Asking for what is already so changes and logs nothing.

``refusal`` is the one rule for every change of an edition, the editor's note included
(``digest.editorial.note.set_note`` and the desk's view both use ``NOTE_RULE``): the note alone may still change
while deliveries are planned but none has gone out, because it re-renders the planned variants in the same
transaction, where a change of articles would have to plan the readers again; and on a past edition not sent
yet (`digest send --date` still sends it), where the desk's story-by-story changes are not offered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest import editions
from digest.app import App
from digest.audience.lists import ensure_list, get_list
from digest.config import Settings
from digest.desk import audit
from digest.errors import DigestError
from digest.models import Article, Selection
from digest.store.articles import get_article
from digest.store.tables import DeliveryRow, EditionOverrideRow, EditionRow, MailingListRow

Direction = Literal["up", "down"]
# Statuses after which an edition is no longer the editor's to shape ("sending": its deliveries are planned).
_CLOSED = {"sent": "it has been sent", "cancelled": "it was cancelled", "skipped": "it was skipped"}
# Delivery states that mean a reader has (or may have) the email: from the first of them on, it is theirs.
GONE_OUT = ("sending", "sent", "in_doubt", "failed")


class DeskRefused(DigestError):
    """A change the desk cannot make: the edition has gone out or is past, or the article is not a candidate."""


@dataclass(frozen=True)
class DeskChange:
    edition_id: int
    list_name: str
    date: date
    action: str
    article_id: str | None
    by: str
    at: datetime
    changed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"edition_id": self.edition_id, "list": self.list_name, "date": self.date.isoformat(),
                "action": self.action, "article_id": self.article_id, "by": self.by, "at": self.at,
                "changed": self.changed, "detail": self.detail}


@dataclass
class Target:
    list_row: MailingListRow
    edition: EditionRow


def resolve_list(session: Session, settings: Settings, list_name: str | None) -> MailingListRow:
    return get_list(session, list_name) if list_name else ensure_list(session, settings)


def find_edition(session: Session, settings: Settings, list_row: MailingListRow, day: date | None, *,
                 now: datetime) -> tuple[date, EditionRow | None, bool]:
    """(date, the edition if it exists or may be created, whether it is past). An edition is created only for
    the upcoming date or a later one: a past date never gets a draft nobody will send."""
    upcoming = editions.upcoming_date(session, settings, list_row, now)
    day = day or upcoming
    if day < upcoming:
        existing = session.scalar(select(EditionRow).where(EditionRow.list_id == list_row.id,
                                                           EditionRow.date == day))
        return day, existing, True
    return day, editions.get_or_create_edition(session, settings, list_row, day), False


# The note's exceptions to the rule, in one place: ``refusal(..., **NOTE_RULE)``, ``editable(..., **NOTE_RULE)``.
NOTE_RULE = {"planned_ok": True, "past_ok": True}


def refusal(session: Session, list_row: MailingListRow, edition: EditionRow | None, day: date,
            past: bool, *, planned_ok: bool = False, past_ok: bool = False) -> str | None:
    """Why the edition can no longer be changed, or None while it can. ``planned_ok``: planned deliveries do not
    stop the change (the note, which re-renders them); ``past_ok``: nor does a past date. A delivery that has
    gone out, and a closed edition, always do."""
    name = f"edition {edition.id} ({list_row.name} {day})" if edition else f"the edition of {list_row.name} {day}"
    if edition is not None:
        first = session.scalar(select(func.min(DeliveryRow.sent_at)).where(DeliveryRow.edition_id == edition.id))
        if first is not None:
            return (f"{name} can no longer be changed: its first delivery went out at "
                    f"{first:%Y-%m-%d %H:%M} UTC")
        going = session.scalar(select(func.count()).select_from(DeliveryRow).where(
            DeliveryRow.edition_id == edition.id, DeliveryRow.status.in_(GONE_OUT)))
        if going:
            return (f"{name} can no longer be changed: its first delivery went out "
                    f"({going} reader(s) have or may have it)")
        if edition.status in _CLOSED:
            return f"{name} can no longer be changed: {_CLOSED[edition.status]}"
        if not planned_ok:
            planned = edition.status == "sending" or session.scalar(
                select(func.count()).select_from(DeliveryRow).where(DeliveryRow.edition_id == edition.id))
            if planned:
                return f"{name} can no longer be changed: its deliveries are planned"
    if past and not past_ok:
        return f"{name} is past: past editions are read-only"
    return None


def editable(session: Session, settings: Settings, list_name: str | None, day: date | None, *,
             now: datetime, planned_ok: bool = False, past_ok: bool = False) -> Target:
    """The list's edition of ``day`` (default: the upcoming one), locked for the change; DeskRefused when it can
    no longer be changed (see ``refusal``)."""
    list_row = resolve_list(session, settings, list_name)
    day, edition, past = find_edition(session, settings, list_row, day, now=now)
    why = refusal(session, list_row, edition, day, past, planned_ok=planned_ok, past_ok=past_ok)
    if why is None and edition is None and past_ok:
        edition = editions.get_or_create_edition(session, settings, list_row, day)
    if why is not None or edition is None:
        raise DeskRefused(why or f"the edition of {list_row.name} {day} cannot be changed")
    # Two editors at once, or a send freezing the edition (it takes the same row lock): the second waits here
    # and then judges the edition as the first one left it.
    session.flush()
    session.refresh(edition, with_for_update=True)
    why = refusal(session, list_row, edition, day, past, planned_ok=planned_ok, past_ok=past_ok)
    if why is not None:
        raise DeskRefused(why)
    return Target(list_row, edition)


def current_selection(session: Session, settings: Settings, target: Target) -> Selection:
    """What the list's own readers (no topics of their own) get now: the order the desk shows and moves."""
    return editions.select_for(session, settings, target.edition, None)


def candidate(session: Session, target: Target, article_id: str) -> Article:
    """The article, when it is one of the edition's candidates; else DeskRefused saying why it is not."""
    for article in editions.candidate_pool(session, target.edition):
        if article.id == article_id:
            return article
    row = get_article(session, article_id)  # NotFound for an unknown id
    where = f"edition {target.edition.id} ({target.list_row.name} {target.edition.date})"
    if row.retracted_at is not None:
        why = f"it was retracted at {row.retracted_at:%Y-%m-%d %H:%M} UTC"
    elif article_id in editions.sent_by_other_editions(session, target.edition):
        why = "the list already sent it in another edition"
    else:
        why = (f"it was not published in the edition's window "
               f"({target.edition.window_start:%Y-%m-%d %H:%M} → {editions.window_end(target.edition):%Y-%m-%d %H:%M}"
               f" UTC)")
    raise DeskRefused(f"article {article_id} is not a candidate of {where}: {why}")


def _override(session: Session, edition: EditionRow, article_id: str, by: str, now: datetime
              ) -> EditionOverrideRow:
    def find() -> EditionOverrideRow | None:
        return session.scalar(select(EditionOverrideRow).where(EditionOverrideRow.edition_id == edition.id,
                                                               EditionOverrideRow.article_id == article_id))

    row = find()
    if row is None:
        try:
            with session.begin_nested():
                row = EditionOverrideRow(edition_id=edition.id, article_id=article_id, pinned=False,
                                         left_out=False, added=False, updated_by=by, updated_at=now)
                session.add(row)
        except IntegrityError:
            row = find()
            if row is None:
                raise
    row.updated_by, row.updated_at = by, now
    return row


def _existing(session: Session, edition: EditionRow, article_id: str) -> EditionOverrideRow | None:
    return session.scalar(select(EditionOverrideRow).where(EditionOverrideRow.edition_id == edition.id,
                                                           EditionOverrideRow.article_id == article_id))


def _done(session: Session, target: Target, action: str, article: Article | None, detail: str, *, by: str,
          now: datetime, changed: bool) -> DeskChange:
    about = f"{article.id} ({article.title})" if article is not None else ""
    text = " ".join(part for part in (about, detail) if part)
    if changed:
        session.flush()
        audit.record(session, target.edition, target.list_row, action, text, by=by, now=now)
    return DeskChange(target.edition.id, target.list_row.name, target.edition.date, action,
                      article.id if article is not None else None, by, now, changed, text)


def pin(session: Session, settings: Settings, list_name: str | None, day: date | None, article_id: str, *,
        by: str, now: datetime) -> DeskChange:
    """Keep the article in the edition, first among the pinned (it overrides a leave-out)."""
    target = editable(session, settings, list_name, day, now=now)
    article = candidate(session, target, article_id)
    existing = _existing(session, target.edition, article_id)
    if existing is not None and existing.pinned:
        return _done(session, target, "pin", article, "", by=by, now=now, changed=False)
    row = _override(session, target.edition, article_id, by, now)
    row.pinned, row.left_out, row.reason, row.added, row.position = True, False, None, False, None
    return _done(session, target, "pin", article, "", by=by, now=now, changed=True)


def unpin(session: Session, settings: Settings, list_name: str | None, day: date | None, article_id: str, *,
          by: str, now: datetime) -> DeskChange:
    """Undo the desk's pin: the article is ranked by its score again (a `digest articles pin` stays)."""
    target = editable(session, settings, list_name, day, now=now)
    article = candidate(session, target, article_id)
    row = _existing(session, target.edition, article_id)
    if row is None or not row.pinned:
        return _done(session, target, "unpin", article, "", by=by, now=now, changed=False)
    row.pinned, row.updated_by, row.updated_at = False, by, now
    return _done(session, target, "unpin", article, "", by=by, now=now, changed=True)


def leave_out(session: Session, settings: Settings, list_name: str | None, day: date | None, article_id: str,
              *, reason: str | None = None, by: str, now: datetime) -> DeskChange:
    """Take the article out of this edition only; the next story takes its place. ``reason`` is kept."""
    target = editable(session, settings, list_name, day, now=now)
    article = candidate(session, target, article_id)
    reason = " ".join((reason or "").split())[:500] or None
    existing = _existing(session, target.edition, article_id)
    detail = f"because: {reason}" if reason else ""
    if existing is not None and existing.left_out and existing.reason == reason:
        return _done(session, target, "leave-out", article, detail, by=by, now=now, changed=False)
    row = _override(session, target.edition, article_id, by, now)
    row.left_out, row.reason, row.pinned, row.added, row.position = True, reason, False, False, None
    return _done(session, target, "leave-out", article, detail, by=by, now=now, changed=True)


def add(session: Session, settings: Settings, list_name: str | None, day: date | None, article_id: str, *,
        by: str, now: datetime) -> DeskChange:
    """Bring a candidate that did not make it into the edition, at the place its score gives it. When the edition
    is full, the last article neither pinned nor added makes room; an added version of a story replaces the
    story's other versions."""
    target = editable(session, settings, list_name, day, now=now)
    article = candidate(session, target, article_id)
    existing = _existing(session, target.edition, article_id)
    if existing is not None and (existing.added or existing.pinned) and not existing.left_out:
        return _done(session, target, "add", article, "", by=by, now=now, changed=False)
    if (existing is None or not existing.left_out) and \
            article_id in current_selection(session, settings, target).article_ids:
        return _done(session, target, "add", article, "(already in the edition)", by=by, now=now, changed=False)
    row = _override(session, target.edition, article_id, by, now)
    row.added, row.left_out, row.reason = True, False, None
    return _done(session, target, "add", article, "", by=by, now=now, changed=True)


def move(session: Session, settings: Settings, list_name: str | None, day: date | None, article_id: str,
         direction: Direction, *, by: str, now: datetime) -> DeskChange:
    """Swap the article with the one above (``up``) or below it; the editor's order then overrides the score
    for this edition."""
    target = editable(session, settings, list_name, day, now=now)
    article = candidate(session, target, article_id)
    order = current_selection(session, settings, target).article_ids
    if article_id not in order:
        raise DeskRefused(f"article {article_id} is not in edition {target.edition.id} "
                          f"({target.list_row.name} {target.edition.date}): add it first")
    i = order.index(article_id)
    j = i - 1 if direction == "up" else i + 1
    if not 0 <= j < len(order):
        raise DeskRefused(f"article {article_id} is already {'first' if direction == 'up' else 'last'} in "
                          f"edition {target.edition.id} ({target.list_row.name} {target.edition.date})")
    order[i], order[j] = order[j], order[i]
    for row in session.scalars(select(EditionOverrideRow).where(EditionOverrideRow.edition_id == target.edition.id,
                                                                EditionOverrideRow.position.is_not(None))):
        row.position = None
    for position, aid in enumerate(order):
        _override(session, target.edition, aid, by, now).position = position
    return _done(session, target, f"move-{direction}", article, f"to #{j + 1}", by=by, now=now, changed=True)


def leave_out_everywhere(app: App, list_name: str | None, day: date | None, article_id: str, *, by: str,
                         now: datetime) -> DeskChange:
    """Retract the article from the desk of an open edition: `digest articles retract`, audit-logged."""
    from digest.send.editorial import retract_article  # the send part's; imported late, it needs the planner

    with app.store.session() as session:
        target = editable(session, app.settings, list_name, day, now=now)
        article = candidate(session, target, article_id)
    outcome = retract_article(app, article_id, now)
    moved = sum(int(e["deliveries_moved"]) for e in outcome.editions)
    with app.store.session() as session:
        list_row = resolve_list(session, app.settings, list_name)
        edition = session.get(EditionRow, target.edition.id)
        assert edition is not None
        return _done(session, Target(list_row, edition), "retract", article,
                     f"(retracted from every edition not yet delivered; {moved} pending deliveries moved)",
                     by=by, now=now, changed=True)


def approve(session: Session, settings: Settings, list_name: str | None, day: date | None, *, by: str,
            now: datetime) -> DeskChange:
    """`digest editions approve` from the desk: who approved and when is kept on the edition."""
    from digest.schedule.manage import approve_edition

    target = editable(session, settings, list_name, day, now=now)
    approval = approve_edition(session, target.edition.id, by=by, now=now)
    detail = "" if approval.changed else (f"(already approved by {approval.approved_by} at "
                                          f"{approval.approved_at:%Y-%m-%d %H:%M} UTC)")
    return _done(session, target, "approve", None, detail, by=by, now=now, changed=approval.changed)
