"""Sending an edition exactly once per subscriber: the outbox dispatcher.

``send_edition`` creates (or resumes) the list's edition for a date and then:

1. takes the edition's send lease, so a second `digest send` of it stops with an error instead of sending;
2. resolves rows a dead process left ``sending`` (see *In doubt* below);
3. freezes the edition, groups the active subscribers into variants, renders each variant once, and writes
   one ``pending`` delivery row per subscriber, all before any provider call;
4. streams pending rows from the store a batch at a time; for each batch it re-checks every subscriber
   (unsubscribed, paused or suppressed since: ``skipped``), commits the batch as ``sending`` (with its batch
   id and attempt), calls the provider, and commits ``sent`` or ``failed``.

**In doubt.** Between the provider accepting a request and our commit of ``sent`` lies a window no one can
close: if the process dies there, a later run finds the rows still ``sending``. At most one request (or one
SMTP message) is in that state per crash. A SendGrid request sent with ``send_at`` a little ahead under its
own batch id is cancelled through the Scheduled Sends API and its rows sent again; otherwise the rows become
``in_doubt`` and the ``in_doubt_rule`` setting decides once for all: ``assume_sent`` (the default: never a
duplicate) leaves them, ``resend`` (never a loss) sends them again. Summaries and `digest editions show`
name every in-doubt delivery.

**Provider trouble.** 429 waits until the provider's reset time and tries the same batch again; 5xx and
refused connections retry with exponential backoff and jitter up to ``send_max_retries`` times; a request
whose answer was lost (a timeout after it was sent) is treated like a crash (cancel, or the in-doubt rule);
other 4xx fail the batch with the provider's message; refused credentials stop the send.

SIGINT and SIGTERM stop the send after the batch in flight; what is left stays ``pending`` for the next run.
"""

from __future__ import annotations

import datetime as _dt
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import select

from digest import editions
from digest.app import App
from digest.audience.lists import ensure_list
from digest.errors import SendError
from digest.models import Selection
from digest.rank.select import ALREADY_SENT_AS
from digest.send import outbox
from digest.send.backends import get_backend
from digest.send.backends.base import (
    AuthError,
    Backend,
    Content,
    InDoubtError,
    PermanentError,
    ProviderError,
    RateLimited,
    Recipient,
    Schedule,
    TransientError,
    Unreachable,
)
from digest.send.guard import EditionLease
from digest.send.plan import Planner, SubscriberFilter, content_for
from digest.send.rate import RateLimiter, backoff_delay, sleep_until
from digest.send.recipients import RecipientMaker
from digest.store.db import Store
from digest.store.tables import DeliveryRow, EditionRow, MailingListRow, VariantRow

# A scheduled SendGrid request is only cancelled (and resent) while its send_at is at least this far ahead.
CANCEL_MARGIN_SECONDS = 5


class EmptyEdition(SendError):
    """The edition's window holds no article: nothing to send (yet, if its window is still open)."""


@dataclass
class InDoubt:
    delivery_id: int
    email: str
    batch_id: str | None
    resolution: str  # "kept (assume_sent)", "resent (in_doubt_rule=resend)", "cancelled and resent"


@dataclass
class SendSummary:
    edition_id: int | None
    list_name: str
    date: date
    backend: str
    dry_run: bool = False
    sandbox: bool = False
    status: str = ""  # the edition's status afterwards
    variants: int = 0
    recipients: int = 0  # delivery rows of the edition (dry run: that would be written)
    sent: int = 0  # by this run
    failed: int = 0
    skipped: int = 0
    in_doubt: int = 0  # rows of the edition in doubt now
    pending: int = 0  # left for a later run
    cancelled: int = 0
    requests: int = 0  # provider calls made by this run
    retries: int = 0
    rate_limited: int = 0
    requeued: int = 0  # in-doubt rows recovered by cancelling a scheduled request
    retried_failed: int = 0  # failed rows put back to pending by --retry-failed
    stopped: bool = False
    in_doubt_found: list[InDoubt] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    subjects: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, *, sent: int = 0, failed: int = 0, skipped: int = 0, in_doubt: int = 0) -> None: ...
    def finish(self) -> None: ...


class _NoProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, *, sent: int = 0, failed: int = 0, skipped: int = 0, in_doubt: int = 0) -> None:
        pass

    def finish(self) -> None:
        pass


@contextmanager
def stop_on_signals(stop: threading.Event,
                    on_signal: Callable[[signal.Signals], None] | None = None) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (the send finishes its batch in flight); a second SIGINT interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        if on_signal is not None:
            on_signal(signal.Signals(signum))
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _parse_date(value: _dt.date | str | None) -> _dt.date | None:
    if value is None or isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(value)
    except ValueError:
        raise SendError(f"--date: {value!r} is not a date (YYYY-MM-DD)") from None


def _utcnow() -> datetime:
    return datetime.now(_dt.UTC)


def _batch_size(settings: Any, backend: Backend) -> int:
    """Recipients per provider request, for a real run and a sandbox run alike."""
    return min(int(settings.send_batch_size), backend.max_batch_size)


def send_edition(app: App, list_name: str | None = None, date: date | str | None = None, via: str | None = None,
                 dry_run: bool = False, sandbox: bool = False, progress: bool | Progress = True,
                 subscriber_filter: SubscriberFilter | None = None, now: datetime | None = None,
                 stop: threading.Event | None = None, retry_failed: bool = False) -> SendSummary:
    """Send (or resume) the list's edition for ``date`` (default: today in the list's time zone).

    ``retry_failed`` first puts the edition's ``failed`` deliveries (refused by the provider: nothing was
    delivered) back to ``pending``, for a second attempt once the cause is fixed; a plain resume never retries
    them, so a permanent refusal is not repeated on every run.

    ``subscriber_filter`` limits which subscribers this run adds to the edition (the scheduler's slices);
    rows already planned are sent regardless. ``dry_run`` plans and renders in a transaction that is rolled
    back: no provider call, nothing stored. ``sandbox`` does the same but also hands every batch to the
    provider in sandbox mode, so it validates everything and delivers nothing.
    """
    now = now or _utcnow()
    settings = app.settings
    store = app.store
    day = _parse_date(date)
    reporter: Progress
    if progress is True:
        from digest.send.progress import RichProgress

        reporter = RichProgress()
    elif progress is False:
        reporter = _NoProgress()
    else:
        reporter = progress
    backend = None if dry_run else get_backend(settings, via, sandbox=sandbox)
    backend_name = via or settings.backend
    with store.session() as s:
        list_row = ensure_list(s, settings, list_name)
        day = day or editions.local_today(list_row, now)
        edition = editions.get_or_create_edition(s, settings, list_row, day)
        summary = SendSummary(edition.id, list_row.name, day, backend_name, dry_run=dry_run, sandbox=sandbox)
        if edition.status == "cancelled":
            raise SendError(f"edition {edition.id} ({list_row.name} {day}) was cancelled; nothing is sent")
        refusal = None
        if list_row.require_approval and edition.approved_at is None and not (dry_run or sandbox):
            # A dry run or a sandbox run delivers nothing: an editor may use them to judge the edition first.
            # (Raised once the session committed, so the edition it names exists for `digest editions approve`.)
            refusal = (f"list {list_row.name!r} requires approval: approve edition {edition.id} first "
                       f"(`digest editions approve {edition.id}`)")
        edition_id = edition.id
    if refusal is not None:
        raise SendError(refusal)
    if dry_run or sandbox:
        assert backend is not None or dry_run
        return _rehearse(store, settings, edition_id, summary, backend, now, subscriber_filter)
    assert backend is not None
    stop = stop or threading.Event()
    lease = EditionLease(store, edition_id)
    lease.acquire()
    try:
        if retry_failed:
            with store.session() as s:
                summary.retried_failed = outbox.retry_failed(s, edition_id, now)
        with stop_on_signals(stop), backend:
            sender = _Sender(store, settings, backend, edition_id, summary, lease, stop, reporter)
            sender.recover(time.time())
            if _plan(store, settings, edition_id, summary, now, subscriber_filter):
                sender.run()
    finally:
        reporter.finish()
        lease.release()
    _finish(store, edition_id, summary, stopped=stop.is_set())
    return summary


def _skip_thin(session: Any, settings: Any, edition: EditionRow, summary: SendSummary) -> bool:
    """A thin day with skip_thin_days: the edition is skipped, before any delivery row exists."""
    list_row = session.get(MailingListRow, edition.list_id)
    rs = editions.rank_settings_for(settings, list_row)
    selection = editions.select_for(session, settings, edition, None)
    if not selection.items:
        raise EmptyEdition(empty_message(edition, list_row.name, selection))
    if selection.thin and rs.skip_thin_days:
        edition.status = "skipped"
        edition.note = f"skipped: only {len(selection.items)} article(s), fewer than min_articles"
        summary.status = "skipped"
        summary.errors.append(edition.note)
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


def _plan(store: Store, settings: Any, edition_id: int, summary: SendSummary, now: datetime,
          subscriber_filter: SubscriberFilter | None) -> bool:
    """Freeze the edition and write every delivery row. Returns False when the edition is skipped."""
    with store.session() as s:
        edition = s.get(EditionRow, edition_id)
        assert edition is not None
        # Before the first delivery row (the edition may already be frozen: built for approval), an edition
        # without any article, or a thin one on a list that skips thin days, sends nothing.
        first = not outbox.counts(s, edition_id)
        if first and _skip_thin(s, settings, edition, summary):
            return False
        editions.freeze(s, edition, now)
        if edition.status in ("draft", "approved"):
            edition.status = "sending"
    planner = Planner(settings, edition_id, now, subscriber_filter=subscriber_filter)
    after = 0
    while True:
        with store.session() as s:
            chunk = planner.plan_chunk(s, after, write=True)
        summary.skipped += len(chunk.skipped)
        after = chunk.last_id
        if chunk.done:
            break
    return True


def _rehearse(store: Store, settings: Any, edition_id: int, summary: SendSummary, backend: Backend | None,
              now: datetime, subscriber_filter: SubscriberFilter | None) -> SendSummary:
    """Dry run and sandbox: plan, render and (sandbox) validate with the provider, then roll everything back."""
    planner = Planner(settings, edition_id, now, subscriber_filter=subscriber_filter)
    session = store.new_session()
    try:
        with session.begin():
            edition = session.get(EditionRow, edition_id)
            assert edition is not None
            if not outbox.counts(session, edition_id) and _skip_thin(session, settings, edition, summary):
                session.rollback()
                return summary
            after = 0
            sandbox = _SandboxRequests(settings, backend, edition, summary) if backend is not None else None
            while True:
                chunk = planner.plan_chunk(session, after, write=False)
                summary.recipients += len(chunk.pending)
                summary.skipped += len(chunk.skipped)
                if sandbox is not None:
                    sandbox.add(session, chunk.pending)
                after = chunk.last_id
                if chunk.done:
                    break
            if sandbox is not None:
                sandbox.flush(session)
            summary.variants = len(planner.variants)
            summary.subjects = [v.subject for v in planner.variants.values()]
            summary.status = edition.status
            session.rollback()
    finally:
        session.close()
        if backend is not None:
            backend.close()
    return summary


class _SandboxRequests:
    """The requests of a sandbox run, cut as a real run cuts them: per variant, `_batch_size` recipients each,
    with a planning chunk's remainder carried into the next chunk, so the provider validates the same requests."""

    def __init__(self, settings: Any, backend: Backend, edition: EditionRow, summary: SendSummary) -> None:
        self.settings = settings
        self.backend = backend
        self.edition = edition
        self.summary = summary
        self.size = _batch_size(settings, backend)
        self.waiting: dict[int, list[Recipient]] = {}
        self.contents: dict[int, Content] = {}  # each variant rendered once, not once per chunk
        self.recipients = RecipientMaker(settings)

    def add(self, session: Any, pending: list[tuple[Any, int]]) -> None:
        for sub, variant_id in pending:
            waiting = self.waiting.setdefault(variant_id, [])
            waiting.append(self.recipients.recipient(0, self.edition.list_id, sub.id, sub.email, sub.name))
            if len(waiting) >= self.size:
                self._send(session, variant_id)

    def flush(self, session: Any) -> None:
        for variant_id, waiting in self.waiting.items():
            if waiting:
                self._send(session, variant_id)

    def _send(self, session: Any, variant_id: int) -> None:
        batch, self.waiting[variant_id] = self.waiting[variant_id], []
        if variant_id not in self.contents:
            self.contents[variant_id] = content_for(session, self.edition.id, variant_id)
        self.backend.send_batch(self.contents[variant_id], batch)
        self.summary.requests += 1
        self.summary.sent += len(batch)


def _finish(store: Store, edition_id: int, summary: SendSummary, *, stopped: bool) -> None:
    with store.session() as s:
        edition = s.get(EditionRow, edition_id)
        assert edition is not None
        totals = outbox.counts(s, edition_id)
        if (summary.status != "skipped" and edition.status not in ("cancelled", "skipped")
                and totals and not totals.get("pending") and not totals.get("sending")):
            edition.status = "sent"
        summary.status = edition.status
        summary.totals = totals
        summary.recipients = sum(totals.values())
        summary.in_doubt = totals.get("in_doubt", 0)
        summary.pending = totals.get("pending", 0) + totals.get("sending", 0)
        summary.cancelled = totals.get("cancelled", 0)
        summary.variants = len(_variants_used(s, edition_id))
        summary.stopped = stopped


def _variants_used(session: Any, edition_id: int) -> list[int]:
    return [v for v in session.scalars(select(DeliveryRow.variant_id).where(DeliveryRow.edition_id == edition_id)
                                       .group_by(DeliveryRow.variant_id)) if v is not None]


@dataclass
class _Deferred:
    """A batch's `sent` outcome, committed together with the next batch's claim (one commit per batch)."""

    ids: list[int]
    batch_id: str
    message_id: str | None
    variant_id: int


class _Sender:
    def __init__(self, store: Store, settings: Any, backend: Backend, edition_id: int, summary: SendSummary,
                 lease: EditionLease, stop: threading.Event, progress: Progress) -> None:
        self.store = store
        self.settings = settings
        self.backend = backend
        self.edition_id = edition_id
        self.summary = summary
        self.lease = lease
        self.stop = stop
        self.progress = progress
        self.run_id = uuid.uuid4().hex[:10]
        self.seq = 0
        self.rate = RateLimiter(float(settings.send_rate))
        self.batch_size = _batch_size(settings, backend)
        self.deferred: _Deferred | None = None
        self.recorded_variants: set[int] = set()
        self.recipients = RecipientMaker(settings)
        self.schedule: Schedule | None = None
        self.delay = int(settings.sendgrid_send_at_delay) if backend.supports_schedule else 0

    # --- recovery -----------------------------------------------------------------------------------------

    def recover(self, now_ts: float) -> None:
        """Resolve rows a dead process left `sending` (the lease guarantees no live process owns them)."""
        now = _utcnow()
        with self.store.session() as s:
            stale = outbox.stale_sending(s, self.edition_id)
        for batch_id, rows in stale.items():
            ids = [r[0] for r in rows]
            schedule = outbox.schedule_of(batch_id)
            cancelled = False
            if (schedule is not None and self.backend.supports_schedule
                    and batch_id.startswith(f"{self.backend.name}@")
                    and schedule.send_at > now_ts + CANCEL_MARGIN_SECONDS):
                try:
                    self.backend.cancel_schedule(schedule.batch_id)
                    cancelled = True
                except ProviderError as exc:
                    self.summary.errors.append(f"could not cancel scheduled request {schedule.batch_id}: {exc}")
            with self.store.session() as s:
                if cancelled:
                    outbox.set_status(s, ids, "pending", now, expect="sending",
                                      error=f"requeued: scheduled request {batch_id} cancelled after its sender died")
                    self.summary.requeued += len(ids)
                    self.summary.in_doubt_found += [InDoubt(i, e, batch_id, "cancelled and resent") for i, e in rows]
                else:
                    outbox.set_status(s, ids, "in_doubt", now, expect="sending", keep_batch=True,
                                      error="in doubt: the sending process died before the provider's answer "
                                            f"was recorded (batch {batch_id})")
                    self.summary.in_doubt_found += [
                        InDoubt(i, e, batch_id, "kept (in_doubt_rule=assume_sent)") for i, e in rows]
        if self.settings.in_doubt_rule == "resend":
            self._resend_in_doubt(now)

    def _resend_in_doubt(self, now: datetime) -> None:
        while True:
            with self.store.session() as s:
                rows = outbox.rows_with_status(s, self.edition_id, "in_doubt")
                if not rows:
                    return
                outbox.set_status(s, [r[0] for r in rows], "pending", now, expect="in_doubt",
                                  error="resent under in_doubt_rule=resend (was in doubt)")
            known = {d.delivery_id: d for d in self.summary.in_doubt_found}
            for delivery_id, email in rows:
                entry = known.get(delivery_id)
                if entry is not None:
                    entry.resolution = "resent (in_doubt_rule=resend)"
                else:
                    self.summary.in_doubt_found.append(
                        InDoubt(delivery_id, email, None, "resent (in_doubt_rule=resend)"))

    # --- the loop -----------------------------------------------------------------------------------------

    def run(self) -> None:
        with self.store.session() as s:
            total = outbox.counts(s, self.edition_id).get("pending", 0)
            variants = [v for v in outbox.pending_variants(s, self.edition_id) if v is not None]
        self.progress.start(total)
        done: set[int] = set()
        try:
            while variants and not self.stop.is_set():
                for variant_id in variants:
                    if self.stop.is_set():
                        break
                    done.add(variant_id)
                    with self.store.session() as s:
                        content = content_for(s, self.edition_id, variant_id)
                    self._send_variant(content)
                # `digest articles retract` during the send moves pending rows to new variants: send those too.
                with self.store.session() as s:
                    variants = [v for v in outbox.pending_variants(s, self.edition_id)
                                if v is not None and v not in done]
        finally:
            self._flush_now()

    def _send_variant(self, content: Content) -> None:
        after = 0
        retries = 0
        while not self.stop.is_set():
            if self.rate.per_second > 0:
                self._flush_now()  # never sleep with a finished batch still marked `sending`
                if not self.rate.wait(self.batch_size, self.stop):
                    return
            schedule = self._schedule(content.variant_id, after)
            with self.store.session() as s:
                self._apply_deferred(s)
                self.lease.renew_in(s)
                edition = s.get(EditionRow, self.edition_id)
                if edition is None or edition.status == "cancelled":
                    # Rows planned while the cancel ran (PostgreSQL) or released after a 429 are not sent either.
                    if edition is not None:
                        outbox.cancel_pending(s, self.edition_id, _utcnow())
                    self.stop.set()
                    return
                batch = outbox.pending_batch(s, self.edition_id, content.variant_id, after, self.batch_size)
                if not batch:
                    return
                if self.delay > 0 and schedule is None:
                    continue  # rows appeared since `_schedule` looked: get them a batch id first
                first_id = batch[0][0]
                after = batch[-1][0]
                recipients, skipped = self._check(s, batch)
                if skipped:
                    for reason, ids in skipped.items():
                        outbox.set_status(s, ids, "skipped", _utcnow(), expect="pending", error=reason)
                        self.summary.skipped += len(ids)
                        self.progress.advance(skipped=len(ids))
                if not recipients:
                    continue
                self.seq += 1
                batch_id = outbox.batch_name(self.backend.name, self.run_id, self.seq, schedule)
                claimed = outbox.claim(s, [r.delivery_id for r in recipients], content.variant_id, batch_id,
                                       _utcnow())
                # Only what this transaction claimed goes out: a row cancelled or moved to another variant
                # (retract) between our read and our claim is left alone.
                recipients = [r for r in recipients if r.delivery_id in claimed]
            if not recipients:
                continue
            outcome = self._call(content, recipients, schedule, batch_id, retries)
            if outcome == "retry":
                retries += 1
                after = first_id - 1  # the same rows again, re-checked
                continue
            retries = 0

    def _schedule(self, variant_id: int, after: int) -> Schedule | None:
        """A fresh SendGrid batch id for the next request (reused while no request consumed it); None when there
        is no next request, so the end of a variant costs no batch id."""
        if self.delay <= 0:
            return None
        if self.schedule is None:
            with self.store.session() as s:
                if not outbox.pending_batch(s, self.edition_id, variant_id, after, 1):
                    return None
            self.schedule = self.backend.new_schedule(self.delay, time.time())
        # send_at follows the moment of sending, not the moment the id was made.
        return Schedule(self.schedule.batch_id, int(time.time()) + self.delay)

    def _check(self, session: Any, batch: list[outbox.Due]) -> tuple[list[Recipient], dict[str, list[int]]]:
        """Re-check each subscriber now, at the moment of sending."""
        suppressed = outbox.suppressed_emails(session, [due.email for due in batch])
        recipients: list[Recipient] = []
        skipped: dict[str, list[int]] = {}
        make = self.recipients.recipient
        for due in batch:
            reason = outbox.why_not_sendable(due, suppressed)
            if reason is not None:
                skipped.setdefault(reason, []).append(due.delivery_id)
                continue
            recipients.append(make(due.delivery_id, due.list_id, due.subscriber_id, due.email, due.name))
        return recipients, skipped

    def _call(self, content: Content, recipients: list[Recipient], schedule: Schedule | None, batch_id: str,
              retries: int) -> str:
        ids = [r.delivery_id for r in recipients]
        try:
            result = self.backend.send_batch(content, recipients, schedule=schedule)
        except RateLimited as exc:
            self.summary.requests += 1
            self.summary.rate_limited += 1
            self._release(ids, batch_id)
            # The wait for the reset is not a retry: the provider asked for it.
            sleep_until(exc.retry_at, self.stop, clock=time.time)
            return "retry"
        except TransientError as exc:
            self.summary.requests += 1
            return self._retry_or_fail(ids, batch_id, str(exc), retries, unreachable=isinstance(exc, Unreachable))
        except InDoubtError as exc:
            self.summary.requests += 1
            return self._in_doubt(ids, batch_id, schedule, str(exc), retries, recipients)
        except AuthError:
            self.summary.requests += 1
            self._release(ids, batch_id)
            raise
        except PermanentError as exc:
            self.summary.requests += 1
            self._mark(ids, batch_id, "failed", str(exc))
            self.summary.failed += len(ids)
            self.summary.errors.append(str(exc))
            self.progress.advance(failed=len(ids))
            return "failed"
        self.summary.requests += 1
        self.schedule = None  # a batch id carries one request, so a cancel touches only that request
        accepted = set(result.accepted)
        self.deferred = _Deferred([i for i in ids if i in accepted], batch_id, result.provider_message_id,
                                  content.variant_id)
        if result.rejected:
            for delivery_id, message in result.rejected.items():
                self._mark([delivery_id], batch_id, "failed", message)
            self.summary.failed += len(result.rejected)
        self.summary.sent += len(accepted)
        self.progress.advance(sent=len(accepted), failed=len(result.rejected))
        return "sent"

    def _retry_or_fail(self, ids: list[int], batch_id: str, message: str, retries: int, *,
                       unreachable: bool = False) -> str:
        if retries >= int(self.settings.send_max_retries) and unreachable:
            # Nobody answered at all: failing this batch and then every next one would lose the whole edition to
            # an outage. Stop instead, everything still pending, as a refused login does.
            self._release(ids, batch_id)
            raise Unreachable(f"{message} (gave up after {retries} retries; the deliveries not sent stay pending: "
                              "run the same command again once it is reachable)")
        if retries >= int(self.settings.send_max_retries):
            self._mark(ids, batch_id, "failed", f"{message} (gave up after {retries} retries)")
            self.summary.failed += len(ids)
            self.summary.errors.append(message)
            self.progress.advance(failed=len(ids))
            return "failed"
        self._release(ids, batch_id)
        self.summary.retries += 1
        sleep_until(time.monotonic() + backoff_delay(retries + 1, float(self.settings.send_backoff_seconds)),
                    self.stop)
        return "retry"

    def _in_doubt(self, ids: list[int], batch_id: str, schedule: Schedule | None, message: str, retries: int,
                  recipients: list[Recipient]) -> str:
        if schedule is not None and schedule.send_at <= time.time() + CANCEL_MARGIN_SECONDS:
            # The answer took longer than the send_at delay: the request may already be going out, so a cancel
            # proves nothing (as in `recover`). Raise sendgrid_send_at_delay above sendgrid_timeout.
            message = f"{message}; too late to cancel its scheduled send (send_at {schedule.send_at})"
            self.schedule = None
        elif schedule is not None:
            try:
                self.backend.cancel_schedule(schedule.batch_id)
                self.schedule = None
                return self._retry_or_fail(ids, batch_id, message, retries)
            except ProviderError as exc:
                message = f"{message}; cancelling it failed: {exc}"
                self.schedule = None  # never reuse a batch id whose request may have been accepted
        if self.settings.in_doubt_rule == "resend" and retries < int(self.settings.send_max_retries):
            self.summary.in_doubt_found += [InDoubt(r.delivery_id, r.email, batch_id, "resent (in_doubt_rule=resend)")
                                            for r in recipients]
            return self._retry_or_fail(ids, batch_id, message, retries)
        self._mark(ids, batch_id, "in_doubt", f"in doubt: {message}")
        self.summary.in_doubt_found += [InDoubt(r.delivery_id, r.email, batch_id, "kept (in_doubt_rule=assume_sent)")
                                        for r in recipients]
        self.summary.errors.append(message)
        self.progress.advance(in_doubt=len(ids))
        return "in_doubt"

    # --- state changes ------------------------------------------------------------------------------------

    def _release(self, ids: list[int], batch_id: str) -> None:
        """The provider did not take the batch: back to pending (with the deferred outcome, if any)."""
        with self.store.session() as s:
            self._apply_deferred(s)
            outbox.set_status(s, ids, "pending", _utcnow(), expect="sending", batch_id=None)

    def _mark(self, ids: list[int], batch_id: str, status: str, error: str) -> None:
        with self.store.session() as s:
            self._apply_deferred(s)
            outbox.set_status(s, ids, status, _utcnow(), expect="sending", batch_id=batch_id, error=error)

    def _apply_deferred(self, session: Any) -> None:
        deferred, self.deferred = self.deferred, None
        if deferred is None:
            return
        outbox.set_status(session, deferred.ids, "sent", _utcnow(), expect="sending", batch_id=deferred.batch_id,
                          provider_message_id=deferred.message_id)
        if deferred.variant_id not in self.recorded_variants:
            self._record_articles(session, deferred.variant_id)

    def _record_articles(self, session: Any, variant_id: int) -> None:
        edition = session.get(EditionRow, self.edition_id)
        variant = session.get(VariantRow, variant_id)
        if edition is not None and variant is not None:
            editions.record_sent_articles(session, edition, variant.article_ids or [])
        self.recorded_variants.add(variant_id)

    def _flush_now(self) -> None:
        if self.deferred is not None:
            with self.store.session() as s:
                self._apply_deferred(s)

