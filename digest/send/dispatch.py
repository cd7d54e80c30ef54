"""Sending an edition exactly once per subscriber: `digest send`.

``send_edition`` creates (or resumes) the list's edition for a date and then, one module a step:

1. takes the edition's lease (`guard`): one process plans and finishes an edition at a time; a second
   `digest send` of it stops with an error instead;
2. resolves rows dead processes left ``sending`` (`recover`: the in-doubt rules);
3. freezes the edition, groups the active subscribers into variants, renders each variant once, writes one
   ``pending`` delivery row per subscriber and cuts them into send batches, all before any provider call
   (`plan`);
4. delivers: a `worker` in this process (and, with ``workers`` > 1 on PostgreSQL, that many `digest worker`
   processes beside it) claims batches, re-checks each subscriber, claims the rows ``sending``, calls the
   provider and records the outcome (`claim`, `deliver`, `record`); with several workers the progress bar is
   drawn from the edition's rows in the store (`watch`), the one place that sees every worker;
5. settles the edition's status (``sent``, or ``failed`` when every attempted delivery failed).

SIGINT and SIGTERM stop the send after the request in flight; what is left stays ``pending`` for the next run.
"""

from __future__ import annotations

import datetime as _dt
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime

from digest import editions
from digest.app import App
from digest.audience.lists import ensure_list
from digest.errors import SendError
from digest.schedule.lease import new_holder
from digest.send import outbox
from digest.send.backends import get_backend
from digest.send.deliver import batch_size
from digest.send.guard import EditionLease
from digest.send.plan import EmptyEdition, SubscriberFilter, empty_message, plan_edition
from digest.send.record import finish
from digest.send.recover import recover
from digest.send.rehearse import rehearse
from digest.send.summary import InDoubt, NoProgress, Progress, SendSummary
from digest.send.watch import Display, EditionWatch
from digest.send.worker import LocalWorkers, Worker, require_postgres

__all__ = ["EmptyEdition", "InDoubt", "SendSummary", "empty_message", "send_edition", "stop_on_signals"]


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


def _progress_for(progress: bool | Progress, workers: int) -> tuple[Progress, Display | None]:
    """The progress hook this process's worker advances, and the display `EditionWatch` feeds from the store.
    With several workers this process sees only its own share, so the bar is drawn from the store instead; a
    caller's own hook still gets this process's advances (it is a hook into this worker, not a display)."""
    if progress is False:
        return NoProgress(), None
    if progress is not True:
        return progress, None
    from digest.send.progress import RichProgress  # rich only when a bar is drawn

    if workers > 1:
        return NoProgress(), RichProgress()
    return RichProgress(), None


def send_edition(app: App, list_name: str | None = None, date: date | str | None = None, via: str | None = None,
                 dry_run: bool = False, sandbox: bool = False, progress: bool | Progress = True,
                 subscriber_filter: SubscriberFilter | None = None, now: datetime | None = None,
                 stop: threading.Event | None = None, retry_failed: bool = False, workers: int = 1) -> SendSummary:
    """Send (or resume) the list's edition for ``date`` (default: today in the list's time zone).

    ``retry_failed`` first puts the edition's ``failed`` deliveries (refused by the provider: nothing was
    delivered) back to ``pending``, for a second attempt once the cause is fixed; a plain resume never retries
    them, so a permanent refusal is not repeated on every run.

    ``subscriber_filter`` limits which subscribers this run adds to the edition (the scheduler's slices);
    rows already planned are sent regardless. ``dry_run`` plans and renders in a transaction that is rolled
    back: no provider call, nothing stored. ``sandbox`` does the same but also hands every batch to the
    provider in sandbox mode, so it validates everything and delivers nothing. ``workers`` > 1 (PostgreSQL
    only) delivers with that many `digest worker` processes started here, besides this one.
    """
    now = now or _utcnow()
    settings = app.settings
    store = app.store
    day = _parse_date(date)
    if workers > 1 and not (dry_run or sandbox):
        require_postgres(store, "--workers")
    reporter, display = _progress_for(progress, workers)
    backend = None if dry_run else get_backend(settings, via, sandbox=sandbox)
    backend_name = via or settings.backend
    with store.session() as s:
        list_row = ensure_list(s, settings, list_name)
        day = day or editions.local_today(list_row, now)
        edition = editions.get_or_create_edition(s, settings, list_row, day)
        summary = SendSummary(edition_id=edition.id, list_name=list_row.name, date=day, backend=backend_name,
                              dry_run=dry_run, sandbox=sandbox)
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
        return rehearse(store, settings, edition_id, summary, backend, now, subscriber_filter)
    assert backend is not None
    stop = stop or threading.Event()
    lease = EditionLease(store, edition_id)
    lease.acquire()
    local: LocalWorkers | None = None
    watch: EditionWatch | None = None
    try:
        if retry_failed:
            with store.session() as s:
                summary.retried_failed = outbox.retry_failed(s, edition_id, now)
        with stop_on_signals(stop, lambda _sig: local.stop() if local is not None else None), backend:
            holder = new_holder()
            recover(store, settings, backend, edition_id, summary, holder, unclaimed=True, now_ts=time.time())
            if plan_edition(store, settings, edition_id, summary, now, subscriber_filter=subscriber_filter,
                            batch_rows=batch_size(settings, backend) if backend.max_batch_size > 1
                            else int(settings.send_batch_size)):
                with store.session() as s:
                    before = outbox.counts(s, edition_id)
                if workers > 1:
                    local = LocalWorkers(workers - 1, edition_id, settings, store.url, via=via)
                    local.start()
                    summary.workers = workers
                if display is not None:
                    watch = EditionWatch(store, edition_id, before, display)
                    watch.start()
                reporter.start(before.get("pending", 0))
                worker = Worker(store, settings, backend, summary, stop, progress=reporter, holder=holder,
                                edition_ids=[edition_id])
                try:
                    worker.run()
                finally:
                    if local is not None:
                        summary.errors += local.wait(summary)
                if local is not None and not stop.is_set():
                    worker.run()  # what a worker that died left: recovered by the in-doubt rules, then sent
            else:
                summary.status = "skipped"
    finally:
        if watch is not None:
            watch.stop()
        reporter.finish()
        lease.release()
    finish(store, edition_id, summary, stopped=stop.is_set())
    return summary
