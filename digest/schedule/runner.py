"""The scheduler: one pass (`run_due`, what `digest schedule due` runs) and the loop around it (`run_forever`).

A pass works list by list, each under a database lease (``schedule:<list>``), so two schedulers never work the
same list at once; within the lease it reads the list's state, asks `due.plan_due` what is due, and acts:
sends through `send.dispatch.send_edition` restricted to the due subscribers (whose one-delivery-per-subscriber
constraint is the last guard against a double send), builds and freezes editions that wait for approval, and
records in ``schedule_runs`` what it decided for each day.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest import editions
from digest.app import App
from digest.audience.subscribers import receives_editions
from digest.errors import DigestError
from digest.schedule import due as due_mod
from digest.schedule.due import DueEdition, EditionState, ListInfo, SubscriberInfo
from digest.schedule.lease import Lease
from digest.schedule.manage import AWAITING_APPROVAL, SENT, SKIPPED_UNAPPROVED, record_run
from digest.send import subject_test
from digest.send.dispatch import EmptyEdition, empty_message, send_edition, stop_on_signals
from digest.store.tables import DeliveryRow, EditionRow, MailingListRow, ScheduleRunRow, SubscriberRow

log = logging.getLogger("digest.schedule")

# Deliveries in these states are still the dispatcher's to finish (a send that crashed or was stopped): the
# scheduler hands such subscribers to send_edition again, which resumes them by its own rule.
UNFINISHED = frozenset({"pending", "sending"})
# Run outcomes (and edition statuses) that close a day for good.
CLOSED_OUTCOMES = frozenset({SKIPPED_UNAPPROVED, "skipped", "cancelled"})
LEASE_TTL = timedelta(minutes=2)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PassItem:
    """What one pass did for one list's day."""

    list_name: str
    date: date
    action: str
    due: int
    edition_id: int | None = None
    sent: int = 0
    failed: int = 0
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"list": self.list_name, "date": self.date.isoformat(), "action": self.action, "due": self.due,
                "edition_id": self.edition_id, "sent": self.sent, "failed": self.failed, "detail": self.detail}


@dataclass
class DueReport:
    now: datetime
    dry_run: bool = False
    items: list[PassItem] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # lists another scheduler was working on
    errors: list[str] = field(default_factory=list)
    stopped: bool = False  # a stop was asked for before the pass finished

    @property
    def sent(self) -> int:
        return sum(i.sent for i in self.items)

    def to_json(self) -> dict[str, Any]:
        return {"now": self.now, "dry_run": self.dry_run, "items": [i.to_json() for i in self.items],
                "busy": self.busy, "errors": self.errors, "stopped": self.stopped, "sent": self.sent}


# --- reading the state the pure planner needs --------------------------------------------------------------


def list_info(row: MailingListRow) -> ListInfo:
    return ListInfo(row.id, row.name, row.timezone or "UTC", row.send_time or "07:00", row.schedule,
                    bool(row.require_approval))


def load_lists(session: Session) -> list[ListInfo]:
    return [list_info(r) for r in session.scalars(select(MailingListRow).order_by(MailingListRow.name))]


def load_subscribers(session: Session, list_id: int | None = None) -> list[SubscriberInfo]:
    """Active, unpaused subscribers. One without ``active_since`` counts from confirmation, else from creation."""
    query = select(SubscriberRow.id, SubscriberRow.list_id, SubscriberRow.active_since, SubscriberRow.confirmed_at,
                   SubscriberRow.created_at, SubscriberRow.timezone, SubscriberRow.send_time).where(
        receives_editions())
    if list_id is not None:
        query = query.where(SubscriberRow.list_id == list_id)
    return [SubscriberInfo(sid, lid, since or confirmed or created, tz, st)
            for sid, lid, since, confirmed, created, tz, st in session.execute(query.order_by(SubscriberRow.id))]


def load_states(session: Session, list_id: int, now: datetime, catch_up: timedelta
                ) -> dict[tuple[int, date], EditionState]:
    """Editions and schedule runs of the dates a pass at ``now`` can touch (local dates anywhere on Earth)."""
    first = (now - catch_up - timedelta(days=2)).date()
    last = (now + timedelta(days=2)).date()
    runs = {d: outcome for d, outcome in session.execute(
        select(ScheduleRunRow.date, ScheduleRunRow.outcome).where(
            ScheduleRunRow.list_id == list_id, ScheduleRunRow.date.between(first, last)))}
    editions = list(session.scalars(select(EditionRow).where(EditionRow.list_id == list_id,
                                                             EditionRow.date.between(first, last))))
    done: dict[int, set[int]] = {}
    if editions:
        for edition_id, subscriber_id, status in session.execute(
                select(DeliveryRow.edition_id, DeliveryRow.subscriber_id, DeliveryRow.status).where(
                    DeliveryRow.edition_id.in_([e.id for e in editions]))):
            if status not in UNFINISHED:
                done.setdefault(edition_id, set()).add(subscriber_id)
    states: dict[tuple[int, date], EditionState] = {}
    for day, outcome in runs.items():
        states[(list_id, day)] = EditionState(list_id, day, closed=outcome in CLOSED_OUTCOMES)
    for e in editions:
        closed = runs.get(e.date) in CLOSED_OUTCOMES or e.status in CLOSED_OUTCOMES
        states[(list_id, e.date)] = EditionState(list_id, e.date, e.id, e.approved_at is not None, closed,
                                                 frozenset(done.get(e.id, ())), e.frozen_at is not None)
    return states


# --- one pass -----------------------------------------------------------------------------------------------


def catch_up_of(app: App) -> timedelta:
    return timedelta(hours=float(app.settings.catch_up_hours))


def _plan_list(session: Session, lst: ListInfo, now: datetime, catch_up: timedelta) -> list[DueEdition]:
    return due_mod.plan_due(now, [lst], load_subscribers(session, lst.id),
                            load_states(session, lst.id, now, catch_up), catch_up)


def plan(app: App, now: datetime) -> tuple[list[DueEdition], list[str]]:
    """What is due at ``now`` across all lists, without leases or side effects (what `digest schedule due
    --dry-run` shows), and the errors of the lists that could not be planned: as in a real pass, one list with a
    bad stored setting is reported and the others are still planned."""
    catch_up = catch_up_of(app)
    items: list[DueEdition] = []
    errors: list[str] = []
    with app.store.session() as session:
        for lst in load_lists(session):
            try:
                items += _plan_list(session, lst, now, catch_up)
            except DigestError as exc:
                errors.append(list_error(lst.name, exc))
    return items, errors


def list_error(name: str, exc: DigestError) -> str:
    """The error of one list's work, naming the list once: errors about a list's settings name it already."""
    text = str(exc)
    prefix = f"list {name!r}"
    return text if text.startswith(prefix) else f"{prefix}: {text}"


def run_due(app: App, now: datetime | None = None, *, dry_run: bool = False,
            stop: threading.Event | None = None) -> DueReport:
    """One scheduler pass at ``now`` (default: the clock). Safe to run from several processes at once."""
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("run_due needs a timezone-aware now")
    report = DueReport(now, dry_run)
    if dry_run:
        planned, report.errors = plan(app, now)
        report.items = [PassItem(d.list_name, d.date, d.action, len(d.subscribers), d.edition_id)
                        for d in planned]
        return report
    with app.store.session() as session:
        lists = load_lists(session)
    for lst in lists:
        if stop is not None and stop.is_set():
            report.stopped = True
            break
        with Lease(app.store, f"schedule:{lst.name}", ttl=LEASE_TTL) as lease:
            if not lease.held:
                report.busy.append(lst.name)
                log.info("list %s: another scheduler is working on it; skipped this pass", lst.name)
                continue
            try:
                _run_list(app, lst, now, report, stop, lease)
            except DigestError as exc:
                message = list_error(lst.name, exc)
                report.errors.append(message)
                log.error("%s", message)
    report.stopped = report.stopped or (stop is not None and stop.is_set())
    return report


def _run_list(app: App, lst: ListInfo, now: datetime, report: DueReport, stop: threading.Event | None,
              lease: Lease) -> None:
    # State is read only now, under the lease: what another scheduler sent a moment ago is already counted.
    with app.store.session() as session:
        items = _plan_list(session, lst, now, catch_up_of(app))
    for item in items:
        if stop is not None and stop.is_set():
            report.stopped = True
            return
        if lease.lost:
            # Another scheduler holds the list now and plans it from the state as it is; going on as well would
            # work the list twice at once, which is what the lease is there to prevent.
            report.busy.append(lst.name)
            log.warning("list %s: lease lost; the rest of its work is left to the scheduler that holds it",
                        lst.name)
            return
        result = PassItem(item.list_name, item.date, item.action, len(item.subscribers), item.edition_id)
        report.items.append(result)
        if item.action == "send":
            if item.subscribers:
                _send(app, item, now, result, stop)
        elif item.action == "build":
            _build(app, item, now, result)
        elif item.action == "await_approval":
            result.detail = (f"edition {item.edition_id} waits for `digest editions approve {item.edition_id}` "
                             f"(until {item.deadline:%Y-%m-%d %H:%M} UTC)" if item.deadline else None)
        elif item.action == "skip_unapproved":
            _skip_unapproved(app, item, now, result)
    _send_subject_winners(app, lst, now, report, stop)


def _send_subject_winners(app: App, lst: ListInfo, now: datetime, report: DueReport,
                          stop: threading.Event | None) -> None:
    """Subject tests whose decision is due: a send of the edition picks the winner and sends it to the rest."""
    with app.store.session() as session:
        due = [day for name, day in subject_test.due(session, now) if name == lst.name]
    for day in due:
        if stop is not None and stop.is_set():
            return
        result = PassItem(lst.name, day, "subject_winner", 0)
        report.items.append(result)
        summary = send_to(app, lst.name, day, [], now=now, stop=stop)
        result.edition_id, result.sent = summary.get("edition_id"), int(summary.get("sent", 0))
        result.failed = int(summary.get("failed", 0))


def _send(app: App, item: DueEdition, now: datetime, result: PassItem, stop: threading.Event | None) -> None:
    try:
        summary = send_to(app, item.list_name, item.date, item.subscriber_ids, now=now, stop=stop)
    except EmptyEdition as exc:
        _empty(app, item, now, result, str(exc))
        return
    except DigestError as exc:
        # Recorded (not closing the day) so `schedule_runs` shows why a day did not go out; the next pass retries.
        with app.store.session() as session:
            record_run(session, item.list_id, item.date, "error", str(exc), now)
        raise
    result.edition_id = summary.get("edition_id", result.edition_id)
    result.sent = int(summary.get("sent", 0))
    result.failed = int(summary.get("failed", 0))
    errors = [str(e) for e in summary.get("errors") or []]
    result.detail = "; ".join(errors) or None
    log.info("list %s, edition %s (%s): sent to %d of %d due subscriber(s)%s", item.list_name, result.edition_id,
             item.date, result.sent, len(item.subscribers), f"; {result.failed} failed" if result.failed else "")
    if summary.get("stopped"):
        log.info("list %s: stop requested (SIGTERM or SIGINT) after the batch in flight; %s delivery(ies) left "
                 "pending for the next pass", item.list_name, summary.get("pending", 0))
    with app.store.session() as session:
        if summary.get("status") == "skipped":
            result.action = "skipped"
            record_run(session, item.list_id, item.date, "skipped", result.detail, now)
        else:
            delivered = session.scalar(
                select(func.count()).select_from(DeliveryRow).join(EditionRow, EditionRow.id == DeliveryRow.edition_id)
                .where(EditionRow.list_id == item.list_id, EditionRow.date == item.date,
                       DeliveryRow.status == "sent"))
            record_run(session, item.list_id, item.date, SENT, f"{delivered} delivered so far", now)


def _build(app: App, item: DueEdition, now: datetime, result: PassItem) -> None:
    """Create and freeze the edition so the editor approves exactly what will go out."""
    empty = None
    with app.store.session() as session:
        list_row = session.get(MailingListRow, item.list_id)
        assert list_row is not None
        edition = editions.get_or_create_edition(session, app.settings, list_row, item.date)
        result.edition_id = edition.id
        savepoint = session.begin_nested()
        editions.freeze(session, edition, now)
        selection = editions.select_for(session, app.settings, edition, None)
        if selection.items:
            savepoint.commit()
        else:
            # Nothing to approve: freezing an empty pool would shut out articles that may still arrive before
            # the cut-off, so the edition stays open and `_empty` decides (wait, or skip once closed).
            savepoint.rollback()
            empty = empty_message(edition, list_row.name, selection)  # of the edition as it is again: not frozen
        if empty is None:
            record_run(session, item.list_id, item.date, AWAITING_APPROVAL,
                       f"edition {edition.id} built; waiting for approval", now)
    if empty is not None:
        _empty(app, item, now, result, empty)
        return
    result.detail = f"built edition {result.edition_id}; approve it with `digest editions approve {result.edition_id}`"
    log.info("list %s: edition %s (%s) built and waiting for approval (digest editions approve %s)",
             item.list_name, result.edition_id, item.date, result.edition_id)


def _empty(app: App, item: DueEdition, now: datetime, result: PassItem, detail: str) -> None:
    """No article in the edition's window. Once the window has closed (the list's cut-off passed) nothing can join
    it, so the day is skipped for good instead of failing every pass until catch-up ends; before that (a reader
    in an earlier zone is due first) articles may still arrive, so the day stays open."""
    with app.store.session() as session:
        list_row = session.get(MailingListRow, item.list_id)
        assert list_row is not None
        edition = session.scalar(select(EditionRow).where(EditionRow.list_id == item.list_id,
                                                          EditionRow.date == item.date))
        # Frozen (its first delivery went out, or it was built for approval): its articles can no longer change.
        closed = now >= editions.cutoff_for(list_row, item.date) or (
            edition is not None and edition.frozen_at is not None)
        if closed:
            result.action = "skipped"
            record_run(session, item.list_id, item.date, "skipped", detail, now)
        else:
            result.action = "waiting"
            record_run(session, item.list_id, item.date, "empty", detail, now)
    result.detail = detail
    log.warning("list %s (%s): %s%s", item.list_name, item.date, detail,
                "; skipped" if closed else "; waiting for articles until the list's cut-off")


def _skip_unapproved(app: App, item: DueEdition, now: datetime, result: PassItem) -> None:
    with app.store.session() as session:
        if item.edition_id is not None:
            edition = session.get(EditionRow, item.edition_id, with_for_update=True)
            if edition is not None and edition.approved_at is not None:  # approved a moment ago: not skipped
                result.action, result.detail = "approved", "approved while this pass ran; sends next pass"
                return
        hours = app.settings.catch_up_hours
        detail = f"not approved within {hours} h of its send time"
        record_run(session, item.list_id, item.date, SKIPPED_UNAPPROVED, detail, now)
    result.detail = detail
    log.warning("list %s: edition %s (%s) skipped: %s", item.list_name, item.edition_id, item.date, detail)


# --- the send seam --------------------------------------------------------------------------------------------


def send_to(app: App, list_name: str, day: date, subscriber_ids: list[int], *, now: datetime,
            stop: threading.Event | None = None) -> dict[str, Any]:
    """Send the list's edition for ``day`` to exactly these subscribers, through the send part's dispatcher.

    ``stop`` is handed on: a SIGTERM during the send ends it after the batch in flight, rows not yet sent stay
    ``pending``, and the next pass hands those subscribers (still due, their delivery unfinished) back to it.
    """
    wanted = frozenset(subscriber_ids)
    summary = send_edition(app, list_name, day, progress=False, now=now, stop=stop,
                           subscriber_filter=lambda row: row.id in wanted)
    return summary.to_json()


# --- the loop ---------------------------------------------------------------------------------------------


def _log_signal(signum: signal.Signals) -> None:
    log.info("received %s: finishing the work in flight, then stopping", signum.name)


def run_forever(app: App, interval: float | None = None, *, stop: threading.Event | None = None,
                on_pass: Callable[[DueReport], None] | None = None) -> None:
    """Run a pass every ``interval`` seconds (default ``scheduler_interval_seconds``) until SIGTERM or SIGINT."""
    interval = float(interval if interval is not None else app.settings.scheduler_interval_seconds)
    stop = stop or threading.Event()
    with stop_on_signals(stop, _log_signal):
        log.info("scheduler started; a pass every %s s", f"{interval:g}")
        while not stop.is_set():
            try:
                report = run_due(app, stop=stop)
            except Exception:  # a bad pass (database gone for a moment) must not end the scheduler
                log.exception("scheduler pass failed; trying again in %s s", f"{interval:g}")
            else:
                if on_pass is not None:
                    on_pass(report)
            stop.wait(interval)
    log.info("scheduler stopped")
