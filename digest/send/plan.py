"""Planning a send: which subscribers get which variant, each variant rendered once, one delivery row each.

Subscribers are read a chunk at a time by id, and each chunk is written (or, for a dry run, only counted)
before the next is read, so memory holds one chunk plus one entry per distinct preference profile and
language, however large the list. Subscribers that already have a delivery row for the edition are left alone: a resumed send
plans only the newcomers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Text, bindparam, select, type_coerce, update
from sqlalchemy.orm import Session

from digest import editions
from digest.audience.lists import effective_language as list_language
from digest.audience.subscribers import receives_editions
from digest.config import Settings
from digest.errors import SendError
from digest.i18n.languages import effective_language
from digest.models import Selection
from digest.rank.select import ALREADY_SENT_AS
from digest.render.edition import RenderedEdition, render_selection
from digest.send import outbox, subject_test
from digest.send.backends.base import Content
from digest.send.claim import new_batch, open_planned, reopen_batches
from digest.send.summary import Tally
from digest.store.db import Store
from digest.store.tables import DeliveryRow, EditionRow, MailingListRow, SubscriberRow, VariantRow

CHUNK = 5000  # subscribers read and written per planning transaction
# What planning reads of a subscriber (and what a `SubscriberFilter` sees: a row with these attributes).
PLAN_COLUMNS = ("id", "list_id", "email", "name", "topics", "language", "timezone", "send_time", "active_since")
SubscriberFilter = Callable[[Any], bool]
_UNSET = object()


class PlanSubscriber(NamedTuple):
    """What planning reads of a subscriber when nobody filters them: topics as the stored JSON text (SQLite) or
    its decoded value (PostgreSQL's driver), decoded once per distinct value (`Planner._variant_for_topics`)."""

    id: int
    email: str
    name: str | None
    topics: Any
    language: str | None


def _chunk_of(*columns: Any) -> Any:
    """The next ``limit`` subscribers of ``list_id`` after ``after_id`` who receive editions, in id order."""
    return (select(*columns)
            .where(SubscriberRow.list_id == bindparam("list_id"), receives_editions(),
                   SubscriberRow.id > bindparam("after_id"))
            .order_by(SubscriberRow.id).limit(bindparam("limit")))


# Built once. Unfiltered, read through the driver: a million readers are two hundred reads of plain tuples.
_PLAN_CHUNK = _chunk_of(SubscriberRow.id, SubscriberRow.email, SubscriberRow.name,
                        type_coerce(SubscriberRow.topics, Text).label("topics"), SubscriberRow.language)
# For a filter: every column it may look at, through the ORM's types (dates as datetimes).
_FILTERED_CHUNK = _chunk_of(*(getattr(SubscriberRow, c) for c in PLAN_COLUMNS))


@dataclass
class PlannedVariant:
    variant_id: int
    subject: str


@dataclass
class Planned:
    """One chunk's outcome: rows written (or that would be), by status."""

    pending: list[tuple[Any, int]] = field(default_factory=list)  # (subscriber row of PLAN_COLUMNS, variant id)
    skipped: list[tuple[Any, str]] = field(default_factory=list)  # (subscriber row, reason)
    last_id: int = 0
    done: bool = False


def rendered_from_variant(variant: VariantRow, list_row: MailingListRow, edition: EditionRow) -> RenderedEdition:
    """The stored render of a variant, as render's message builder takes it (a resumed run renders nothing)."""
    html = variant.html or ""
    return RenderedEdition(
        subject=variant.subject or "", preheader=variant.preheader or "", mjml="", html=html,
        text=variant.text or "", trimmed=[], article_count=len(variant.article_ids or []),
        size_bytes=len(html.encode("utf-8")), key=variant.render_hash or f"variant-{variant.id}",
        article_ids=tuple(variant.article_ids or []), list_name=list_row.name, edition_date=edition.date,
        # The variant's readers' language, stored with it: the greeting of a reader without a name.
        language=effective_language(variant.language, list_row.language),
    )


def content_for(session: Session, edition_id: int, variant_id: int) -> Content:
    variant = session.get(VariantRow, variant_id)
    edition = session.get(EditionRow, edition_id)
    if variant is None or edition is None:
        raise LookupError(f"variant {variant_id} of edition {edition_id} is gone")
    list_row = session.get(MailingListRow, edition.list_id)
    assert list_row is not None
    return Content(edition_id=edition_id, variant_id=variant_id, list_row=list_row,
                   rendered=rendered_from_variant(variant, list_row, edition))


class Planner:
    def __init__(self, settings: Settings, edition_id: int, now: datetime, *,
                 subscriber_filter: SubscriberFilter | None = None, batch_rows: int = 0) -> None:
        self.settings = settings
        # Rows per send batch (0: a dry run, which cuts none); each batch holds one variant's rows.
        self.batch_rows = batch_rows
        self._batches: dict[int, tuple[int, int]] = {}  # variant id → (open batch id, rows in it)
        self.edition_id = edition_id
        self.now = now
        self.subscriber_filter = subscriber_filter
        self._ranker: Any = None
        self._clicks: Any = None
        self._profiles: dict[tuple[tuple[str, ...], str], PlannedVariant | None] = {}
        # (stored topics, subscriber language) → (preference profile, effective language)
        self._raw_profiles: dict[tuple[str | None, str | None], tuple[tuple[str, ...], str]] = {}
        self.variants: dict[int, PlannedVariant] = {}

    # --- variants -----------------------------------------------------------------------------------------

    def _variant(self, session: Session, edition: EditionRow, list_row: MailingListRow,
                 profile: tuple[str, ...], language: str) -> PlannedVariant | None:
        """The variant for a preference profile in a language, selected and rendered on first need (None:
        nothing to send)."""
        if (profile, language) in self._profiles:
            return self._profiles[(profile, language)]
        if self._ranker is None:
            self._ranker = editions.ranker_for(session, self.settings, edition)
            self._clicks = editions.engagement_for(session, self.settings, edition)
        selection = editions.stamp(self._ranker.select(profile, engagement=self._clicks, with_dropped=False),
                                   list_row, edition, language)
        planned: PlannedVariant | None = None
        if selection.items:
            variant = editions.get_or_create_variant(session, edition, selection)
            if variant.html is None or variant.rendered_at is None:
                self.render(session, variant, list_row, edition, selection)
            planned = self.variants.get(variant.id) or PlannedVariant(variant.id, variant.subject or "")
            self.variants[variant.id] = planned
        self._profiles[(profile, language)] = planned
        return planned

    def _language(self, subscriber_language: str | None, list_row: MailingListRow) -> str:
        return effective_language(subscriber_language, list_language(self.settings, list_row))

    def render(self, session: Session, variant: VariantRow, list_row: MailingListRow, edition: EditionRow,
               selection: Any) -> None:
        rendered = render_selection(self.settings, list_row, edition.date, selection)
        variant.subject = rendered.subject
        variant.preheader = rendered.preheader
        variant.html = rendered.html
        variant.text = rendered.text
        variant.render_hash = rendered.key[:64]
        variant.rendered_at = self.now
        # What the variant shows after the size guard: what record_sent_articles will record.
        variant.article_ids = list(rendered.article_ids)
        session.flush()

    # --- subscribers --------------------------------------------------------------------------------------

    def plan_chunk(self, session: Session, after_id: int, *, write: bool, limit: int = CHUNK) -> Planned:
        edition = session.get(EditionRow, self.edition_id)
        assert edition is not None
        list_row = session.get(MailingListRow, edition.list_id)
        assert list_row is not None
        subscribers = self._read_chunk(session, list_row, after_id, limit)
        out = Planned(last_id=subscribers[-1].id if subscribers else after_id, done=len(subscribers) < limit)
        if subscribers:
            # Who of this chunk already has a row (a resumed send): one range read on the (edition, subscriber)
            # index. A NOT EXISTS in the query above let PostgreSQL, its statistics not yet aware of a table
            # filling up, pick a plan that scanned the deliveries once per subscriber.
            planned = set(session.scalars(select(DeliveryRow.subscriber_id).where(
                DeliveryRow.edition_id == self.edition_id,
                DeliveryRow.subscriber_id.between(subscribers[0].id, subscribers[-1].id))))
            if planned:
                subscribers = [s for s in subscribers if s.id not in planned]
        if self.subscriber_filter is not None:
            subscribers = [s for s in subscribers if self.subscriber_filter(s)]
        suppressed = outbox.suppressed_emails(session, [s.email for s in subscribers])
        rows: list[tuple[Any, ...]] = []
        batched = write and self.batch_rows > 0
        # One tuple per row (`outbox.DELIVERY_COLUMNS`), its time converted once for the database: this loop runs
        # once per reader, a million times for a million.
        now = outbox.stored_time(session, self.now)
        edition_id = self.edition_id
        variant_for = self._variant_for_topics
        # Neighbours mostly share their preferences: the last answer is reused without a lookup.
        last: tuple[Any, Any, PlannedVariant | None] = (_UNSET, _UNSET, None)
        for sub in subscribers:
            if sub.email in suppressed:
                variant, reason = None, "address is suppressed"
            else:
                if sub.topics == last[0] and sub.language == last[1]:
                    variant = last[2]
                else:
                    variant = variant_for(session, edition, list_row, sub.topics, sub.language)
                    last = (sub.topics, sub.language, variant)
                reason = "no article for this subscriber's selection"
            if variant is not None:
                out.pending.append((sub, variant.variant_id))
                work_batch = self._batch_for(session, variant.variant_id) if batched else None
                rows.append((edition_id, sub.id, variant.variant_id, sub.email, "pending", None, 0, work_batch,
                             now, now))
            else:
                out.skipped.append((sub, reason))
                rows.append((edition_id, sub.id, None, sub.email, "skipped", reason, 0, None, now, now))
        if write:
            outbox.insert_deliveries(session, rows)
        return out

    def _read_chunk(self, session: Session, list_row: MailingListRow, after_id: int, limit: int) -> list[Any]:
        """The next ``limit`` subscribers who receive editions, as plain rows, not ORM objects: planning a million
        readers must not build a million mapped instances. Without a filter to show them to, only what planning
        and a sandbox run need is read, the topics as the stored text (decoded once per distinct value)."""
        values = {"list_id": list_row.id, "after_id": after_id, "limit": limit}
        if self.subscriber_filter is None:
            return list(map(PlanSubscriber._make, outbox.driver_rows(session, _PLAN_CHUNK, values)))
        return list(session.execute(_FILTERED_CHUNK, values))

    def _variant_for_topics(self, session: Session, edition: EditionRow, list_row: MailingListRow,
                            topics: Any, subscriber_language: str | None) -> PlannedVariant | None:
        """`_variant` of the subscriber's effective preferences and language, worked out once per distinct stored
        value; ``topics`` is a list, or the stored JSON text (`_read_chunk`; PostgreSQL's driver decodes it)."""
        key = (topics if isinstance(topics, str) or topics is None else json.dumps(topics), subscriber_language)
        profile = self._raw_profiles.get(key)
        if profile is None:
            raw = json.loads(topics) if isinstance(topics, str) else topics
            profile = self._raw_profiles[key] = (
                editions.effective_preferences(tuple(str(t) for t in raw or ()), list_row.topics),
                self._language(subscriber_language, list_row))
        return self._variant(session, edition, list_row, *profile)

    def _batch_for(self, session: Session, variant_id: int) -> int:
        """The send batch a new row of ``variant_id`` joins: the variant's current one until it is full."""
        current = self._batches.get(variant_id)
        if current is None or current[1] >= self.batch_rows:
            # Claimable only once planning is done (`plan_edition`): a subject test draws its sample first.
            current = (new_batch(session, self.edition_id, variant_id, status="planned"), 0)
        self._batches[variant_id] = (current[0], current[1] + 1)
        return current[0]

    def reassign(self, session: Session, variant_ids: list[int], *, chunk: int = 5000) -> int:
        """Move the pending deliveries of ``variant_ids`` to the variants their subscribers get now."""
        edition = session.get(EditionRow, self.edition_id)
        assert edition is not None
        list_row = session.get(MailingListRow, edition.list_id)
        assert list_row is not None
        moved = 0
        after = 0
        while True:
            rows = session.execute(
                select(DeliveryRow.id, SubscriberRow.topics, SubscriberRow.language)
                .join(SubscriberRow, SubscriberRow.id == DeliveryRow.subscriber_id)
                .where(DeliveryRow.edition_id == self.edition_id, DeliveryRow.status == "pending",
                       DeliveryRow.variant_id.in_(variant_ids), DeliveryRow.id > after)
                .order_by(DeliveryRow.id).limit(chunk)).all()
            if not rows:
                return moved
            after = rows[-1][0]
            targets: dict[int | None, list[int]] = {}
            for delivery_id, topics, language in rows:
                variant = self._variant(session, edition, list_row,
                                        editions.effective_preferences(topics, list_row.topics),
                                        self._language(language, list_row))
                targets.setdefault(variant.variant_id if variant else None, []).append(delivery_id)
            for variant_id, ids in targets.items():
                if variant_id is None:
                    outbox.set_status(session, ids, "skipped", self.now, expect="pending",
                                      error="no article left for this subscriber's selection")
                else:
                    # Only rows still pending move: a row a running send claimed meanwhile went out as it was.
                    result = session.execute(
                        update(DeliveryRow).where(DeliveryRow.id.in_(ids), DeliveryRow.status == "pending",
                                                  DeliveryRow.variant_id.in_(variant_ids))
                        .values(variant_id=variant_id, updated_at=self.now)
                        .execution_options(synchronize_session=False))
                    moved += int(getattr(result, "rowcount", 0) or 0)


class EmptyEdition(SendError):
    """The edition's window holds no article: nothing to send (yet, if its window is still open)."""


def plan_edition(store: Store, settings: Settings, edition_id: int, tally: Tally, now: datetime, *,
                 batch_rows: int, subscriber_filter: SubscriberFilter | None = None) -> bool:
    """Freeze the edition, write every delivery row and cut the rows into send batches, idempotently: what is
    planned stays, newcomers are added; then a subject test's step (`subject_test.at_plan`) and the batches
    open, in one transaction. Only the holder of the edition's lease calls this. Returns False when
    the edition is skipped (a thin day on a list that skips them)."""
    with store.session() as s:
        edition = s.get(EditionRow, edition_id)
        assert edition is not None
        # Before the first delivery row (the edition may already be frozen: built for approval), an edition
        # without any article, or a thin one on a list that skips thin days, sends nothing.
        first = not outbox.counts(s, edition_id)
        if first and skip_thin(s, settings, edition, tally):
            return False
        editions.freeze(s, edition, now)
    planner = Planner(settings, edition_id, now, subscriber_filter=subscriber_filter, batch_rows=batch_rows)
    after = 0
    while True:
        with store.session() as s:
            chunk = planner.plan_chunk(s, after, write=True)
        tally.skipped += len(chunk.skipped)
        after = chunk.last_id
        if chunk.done:
            break
    with store.session() as s:
        # A subject test's sample is drawn (or newcomers held, or the held released to the winner) in the
        # transaction that opens the batches: no worker can claim a row before it has its subject.
        subject_test.at_plan(s, edition_id, now)
        open_planned(s, edition_id)
        reopen_batches(s, edition_id)
        assign_unbatched(s, edition_id, batch_rows)
        edition = s.get(EditionRow, edition_id)
        assert edition is not None
        if edition.status not in ("cancelled", "skipped") and outbox.counts(s, edition_id).get("pending"):
            # Workers join editions that are sending: also one resumed after it was marked sent or failed.
            edition.status = "sending"
    return True


def assign_unbatched(session: Session, edition_id: int, batch_rows: int) -> int:
    """Pending rows without a send batch (planned before batches existed) get one, per variant in id order."""
    assigned = 0
    while True:
        rows = session.execute(
            select(DeliveryRow.id, DeliveryRow.variant_id)
            .where(DeliveryRow.edition_id == edition_id, DeliveryRow.status == "pending",
                   DeliveryRow.work_batch.is_(None))
            .order_by(DeliveryRow.variant_id, DeliveryRow.id).limit(batch_rows)).all()
        if not rows:
            return assigned
        variant_id = rows[0][1]
        ids = [r[0] for r in rows if r[1] == variant_id]
        batch = new_batch(session, edition_id, variant_id)
        session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(ids)).values(work_batch=batch)
                        .execution_options(synchronize_session=False))
        assigned += len(ids)


def skip_thin(session: Session, settings: Settings, edition: EditionRow, tally: Tally) -> bool:
    """A thin day with skip_thin_days: the edition is skipped, before any delivery row exists."""
    list_row = session.get(MailingListRow, edition.list_id)
    assert list_row is not None
    rs = editions.rank_settings_for(settings, list_row)
    selection = editions.select_for(session, settings, edition, None)
    if not selection.items:
        raise EmptyEdition(empty_message(edition, list_row.name, selection))
    if selection.thin and rs.skip_thin_days:
        edition.status = "skipped"
        edition.note = f"skipped: only {len(selection.items)} article(s), fewer than min_articles"
        tally.errors.append(edition.note)
        return True
    return False


def empty_message(edition: EditionRow, list_name: str, selection: Selection | None = None) -> str:
    """Why an edition has nothing to send, naming its window (or its frozen pool). With the empty ``selection``,
    articles that were there but only retold stories the list already sent are named as such."""
    retold = sum(1 for d in (selection.dropped if selection else ()) if d.reason.startswith(ALREADY_SENT_AS))
    if retold:
        return (f"edition {edition.id} ({list_name} {edition.date}) has no article to send: the {retold} "
                f"article(s) in its window all retell stories the list already sent (story_memory_days)")
    if edition.frozen_at is not None:
        return (f"edition {edition.id} ({list_name} {edition.date}) has no article to send: its articles were "
                f"frozen at {edition.frozen_at:%Y-%m-%d %H:%M} UTC and none was published between "
                f"{edition.window_start:%Y-%m-%d %H:%M} and then")
    return (f"edition {edition.id} ({list_name} {edition.date}) has no article to send: nothing was ingested "
            f"between {edition.window_start:%Y-%m-%d %H:%M} and {edition.cutoff_at:%Y-%m-%d %H:%M} UTC")
