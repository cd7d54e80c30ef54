"""Delivering one claimed send batch: re-check each subscriber, claim the rows ``sending``, call the provider,
record the outcome; then the next request's worth of the batch, until none is left pending.

**One request ahead.** While a request is in flight (in a thread of its own: the wait for the provider holds no
lock, Python's included), this process reads what its next request will most likely be and works out the
recipients' signed links and the provider's per-recipient part (`Backend.prepare`). Nothing is claimed or
written for it: when that request's turn comes, its rows are read and claimed as always, in the transaction
that records the previous request, and the work done ahead is used only for rows that are still exactly as they
were read. So there is still one request in flight at a time, and one in doubt at most after a crash.

**Provider trouble.** 429 pauses every worker (`pace`) until the provider's reset time and tries the same rows
again; 5xx and refused connections retry with exponential backoff and jitter up to ``send_max_retries`` times; a
request whose answer was lost (a timeout after it was sent) is cancelled when it was scheduled ahead (send_at),
else the ``in_doubt_rule`` decides; other 4xx fail the rows with the provider's message; refused credentials stop
the send. At most one request per process is ever in flight, so a crash leaves at most one in doubt.

**Refused recipients.** One reader refused within an accepted request (an SMTP 5xx for that address, SendGrid's
400 naming it) is a hard bounce, recorded as the webhook records one; a 4xx is tried again once the rest went
out (`refusals`). `digest send` and `digest worker` deliver through this module alike.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from sqlalchemy.orm import Session

from digest.config import Settings
from digest.send import outbox
from digest.send.backends.base import (
    AuthError,
    Backend,
    BatchResult,
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
from digest.send.pace import SharedPace
from digest.send.plan import content_for
from digest.send.rate import backoff_delay, sleep_until
from digest.send.recipients import RecipientMaker
from digest.send.record import Recorder, utcnow
from digest.send.refusals import Refusals
from digest.send.summary import InDoubt, Progress, Tally
from digest.store.db import Store
from digest.store.tables import EditionRow

# A scheduled SendGrid request is only cancelled (and resent) while its send_at is at least this far ahead.
CANCEL_MARGIN_SECONDS = 5
Outcome = Literal["done", "stopped", "cancelled"]
# The next send batch a worker would claim, without claiming it: (batch id, edition id), or None.
PeekNext = Callable[[Session], "tuple[int, int] | None"]
# What a worker does with a send batch that has nothing left pending, in the transaction that found it so: hands
# it back done and claims the next one, (batch id, edition id), or None when there is none.
NextBatch = Callable[[Session, int], "tuple[int, int] | None"]
log = logging.getLogger(__name__)


def batch_size(settings: Settings, backend: Backend) -> int:
    """Recipients per provider request, for a real run and a sandbox run alike."""
    return min(int(settings.send_batch_size), backend.max_batch_size)


class Deliverer:
    def __init__(self, store: Store, settings: Settings, backend: Backend, tally: Tally, stop: threading.Event,
                 progress: Progress, holder: str) -> None:
        self.store = store
        self.settings = settings
        self.backend = backend
        self.tally = tally
        self.stop = stop
        self.progress = progress
        self.recorder = Recorder(store)
        self.recipients = RecipientMaker(settings)
        self.pace = SharedPace(store, backend.name, float(settings.send_rate))
        self.size = batch_size(settings, backend)
        self.run_id = uuid.uuid4().hex[:10]
        self.seq = 0
        self.schedule: Schedule | None = None
        self.delay = int(settings.sendgrid_send_at_delay) if backend.supports_schedule else 0
        self.contents: dict[int, Content] = {}
        self.refusals = Refusals(store, settings, backend.name, holder)
        self.batch: int | None = None  # the send batch in hand (`deliver`)
        self.edition_id = 0
        self.peek_next: PeekNext | None = None  # set by the worker, which knows which batches it may claim
        self._ahead: dict[int, tuple[outbox.Due, Recipient]] = {}  # delivery id → (row as read, recipient)
        self._requests: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Wait for the request in flight, if any (there is none between `deliver` calls), and end its thread."""
        if self._requests is not None:
            self._requests.shutdown(wait=True)
            self._requests = None

    def deliver(self, work_batch: int, edition_id: int, *, then: NextBatch | None = None) -> Outcome:
        """Deliver the send batch ``work_batch`` of ``edition_id``, and with ``then`` the batches it hands over
        each time one is done, until none is left ("done"), the send is stopped or the edition cancelled.
        `batch` is the batch in hand whenever this returns or raises (None once ``then`` found no other)."""
        self.batch, self.edition_id = work_batch, edition_id
        retries = 0
        while not self.stop.is_set():
            if self.pace.per_second > 0:
                self.recorder.flush()  # never sleep with a finished request still marked `sending`
                if not self.pace.wait(self.size, self.stop):
                    return "stopped"
            schedule = self._schedule(self.batch)
            recipients: list[Recipient] = []
            in_hand = (self.batch, self.edition_id)
            try:
                with self.store.session() as s:
                    # One transaction per request: the last request's outcome, the hand-over of a finished batch
                    # and the claim of the next request's rows commit together.
                    self.recorder.apply(s)
                    edition = s.get(EditionRow, self.edition_id)
                    if edition is None or edition.status == "cancelled":
                        # Rows planned while the cancel ran (PostgreSQL) or released after a 429 are not sent
                        # either.
                        if edition is not None:
                            outbox.cancel_pending(s, self.edition_id, utcnow())
                        return "cancelled"
                    paused = self.pace.paused_until(s)
                    if paused <= time.time():
                        paused = 0.0
                        due = outbox.batch_due(s, self.batch, self.size)
                        if not due:
                            following = then(s, self.batch) if then is not None else None
                            if following is None:
                                self.batch = None
                                return "done"
                            self.batch, self.edition_id = following
                            if following[1] != edition.id:
                                continue  # another edition: its status is checked first
                            due = outbox.batch_due(s, self.batch, self.size)
                            if not due:
                                continue
                        if self.delay > 0 and schedule is None:
                            continue  # rows appeared since `_schedule` looked: get them a batch id first
                        variant_id = due[0].variant_id
                        content = self._content(s, self.edition_id, variant_id)
                        recipients = self._check(s, due)
                        if not recipients:
                            continue
                        self.seq += 1
                        batch_id = outbox.batch_name(self.backend.name, self.run_id, self.seq, schedule)
                        claimed = outbox.claim(s, [r.delivery_id for r in recipients], variant_id, batch_id,
                                               utcnow(), work_batch=self.batch)
                        # Only what this transaction claimed goes out: a row cancelled or moved to another variant
                        # (retract) between our read and our claim is left alone.
                        recipients = [r for r in recipients if r.delivery_id in claimed]
            except BaseException:
                # Rolled back: the hand-over did not happen, and the batch in hand is the one before it.
                self.batch, self.edition_id = in_hand
                raise
            if paused:
                # A worker met a 429: every worker waits for its reset.
                if not sleep_until(paused, self.stop, clock=time.time):
                    return "stopped"
                continue
            if not recipients:
                continue
            if self._call(content, recipients, schedule, batch_id, retries) == "retry":
                retries += 1
            else:
                retries = 0
        return "stopped"

    def _content(self, session: Session, edition_id: int, variant_id: int) -> Content:
        content = self.contents.get(variant_id)
        if content is None:
            content = self.contents[variant_id] = content_for(session, edition_id, variant_id)
        return content

    def _schedule(self, work_batch: int) -> Schedule | None:
        """A fresh SendGrid batch id for the next request (reused while no request consumed it); None when there
        is no next request, so the end of a batch costs no batch id."""
        if self.delay <= 0:
            return None
        if self.schedule is None:
            with self.store.session() as s:
                if not outbox.has_due(s, work_batch):
                    return None
            self.schedule = self.backend.new_schedule(self.delay, time.time())
        # send_at follows the moment of sending, not the moment the id was made.
        return Schedule(self.schedule.batch_id, int(time.time()) + self.delay)

    def _check(self, session: Session, due: list[outbox.Due]) -> list[Recipient]:
        """Re-check each subscriber now, at the moment of sending; those who no longer get it are skipped."""
        suppressed = outbox.suppressed_emails(session, [d.email for d in due])
        recipients: list[Recipient] = []
        skipped: dict[str, list[int]] = {}
        make = self.recipients.recipient
        ahead, self._ahead = self._ahead, {}
        for d in due:
            reason = outbox.why_not_sendable(d, suppressed)
            if reason is not None:
                skipped.setdefault(reason, []).append(d.delivery_id)
                continue
            hit = ahead.get(d.delivery_id)
            # Made ahead only if the row and its subscriber are exactly as they are now.
            recipients.append(hit[1] if hit is not None and hit[0] == d
                              else make(d.delivery_id, d.list_id, d.subscriber_id, d.email, d.name))
        for reason, ids in skipped.items():
            outbox.set_status(session, ids, "skipped", utcnow(), expect="pending", error=reason)
            self.tally.skipped += len(ids)
            self.progress.advance(skipped=len(ids))
        return recipients

    # --- one provider request -----------------------------------------------------------------------------

    def _call(self, content: Content, recipients: list[Recipient], schedule: Schedule | None, batch_id: str,
              retries: int) -> str:
        ids = [r.delivery_id for r in recipients]
        tally = self.tally
        try:
            result = self._send_looking_ahead(content, recipients, schedule)
        except RateLimited as exc:
            tally.requests += 1
            tally.rate_limited += 1
            self.pace.pause(exc.retry_at)
            self.recorder.release(ids, batch_id)
            # The wait for the reset is not a retry: the provider asked for it.
            sleep_until(exc.retry_at, self.stop, clock=time.time)
            return "retry"
        except TransientError as exc:
            tally.requests += 1
            return self._retry_or_fail(ids, batch_id, str(exc), retries, unreachable=isinstance(exc, Unreachable))
        except InDoubtError as exc:
            tally.requests += 1
            return self._in_doubt(ids, batch_id, schedule, str(exc), retries, recipients)
        except AuthError:
            tally.requests += 1
            self.recorder.release(ids, batch_id)
            raise
        except PermanentError as exc:
            tally.requests += 1
            self.recorder.mark(ids, batch_id, "failed", str(exc))
            tally.failed += len(ids)
            tally.errors.append(str(exc))
            self.progress.advance(failed=len(ids))
            return "failed"
        tally.requests += 1
        self.schedule = None  # a batch id carries one request, so a cancel touches only that request
        accepted = set(result.accepted)
        if result.rejected:
            # Before the accepted rows' outcome is deferred: that one covers what the request leaves `sending`.
            for delivery_id, message in result.rejected.items():
                self.recorder.mark([delivery_id], batch_id, "failed", message, whole=False)
            tally.failed += len(result.rejected)
        # Also before: bounced and deferred rows leave `sending` here, so the deferred outcome leaves them alone.
        refused, deferred = self.refusals.handle(result, batch_id, self.recorder.apply, content.edition_id)
        tally.failed += refused
        tally.retries += deferred
        tally.bounced += len(result.bounced)
        self.recorder.defer_sent([i for i in ids if i in accepted], batch_id, result.provider_message_id,
                                 content.edition_id, content.variant_id)
        tally.sent += len(accepted)
        self.progress.advance(sent=len(accepted), failed=len(result.rejected) + refused)
        return "sent"

    def _send_looking_ahead(self, content: Content, recipients: list[Recipient],
                            schedule: Schedule | None) -> BatchResult:
        """The provider call, in a thread, while this one prepares the next request; the call's errors are
        raised here as they would be without the thread."""
        if self._requests is None:
            self._requests = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest-request")
        request = self._requests.submit(self.backend.send_batch, content, recipients, schedule=schedule)
        try:
            self._look_ahead(content.edition_id)
        finally:
            result = request.result()
        return result

    def _look_ahead(self, edition_id: int) -> None:
        """Guess the next request (the rest of this send batch, else the next batch the worker would claim) and
        make its recipients and their provider part. A wrong guess, or a failure here, costs only the time it
        would have saved: the next request's own path makes whatever is missing and meets any real error."""
        try:
            with self.store.session() as s:
                due, batch_edition = self._peek(s, edition_id)
                if not due:
                    return
                content = self._content(s, batch_edition, due[0].variant_id)
            make = self.recipients.recipient
            ahead = {d.delivery_id: (d, make(d.delivery_id, d.list_id, d.subscriber_id, d.email, d.name))
                     for d in due if d.receives}
            self._ahead = ahead
            self.backend.prepare(content, [r for _, r in ahead.values()])
        except Exception:
            log.debug("looking ahead failed", exc_info=True)
            self._ahead = {}

    def _peek(self, session: Session, edition_id: int) -> tuple[list[outbox.Due], int]:
        current = self.batch
        due = outbox.batch_due(session, current, self.size) if current is not None else []
        if due:
            return due, edition_id
        following = self.peek_next(session) if self.peek_next is not None else None
        if following is None:
            return [], edition_id
        return outbox.batch_due(session, following[0], self.size), following[1]

    def _retry_or_fail(self, ids: list[int], batch_id: str, message: str, retries: int, *,
                       unreachable: bool = False) -> str:
        if retries >= int(self.settings.send_max_retries) and unreachable:
            # Nobody answered at all: failing this batch and then every next one would lose the whole edition to
            # an outage. Stop instead, everything still pending, as a refused login does.
            self.recorder.release(ids, batch_id)
            raise Unreachable(f"{message} (gave up after {retries} retries; the deliveries not sent stay pending: "
                              "run the same command again once it is reachable)")
        if retries >= int(self.settings.send_max_retries):
            self.recorder.mark(ids, batch_id, "failed", f"{message} (gave up after {retries} retries)")
            self.tally.failed += len(ids)
            self.tally.errors.append(message)
            self.progress.advance(failed=len(ids))
            return "failed"
        self.recorder.release(ids, batch_id)
        self.tally.retries += 1
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
            self.tally.in_doubt_found += [InDoubt(r.delivery_id, r.email, batch_id, "resent (in_doubt_rule=resend)")
                                          for r in recipients]
            return self._retry_or_fail(ids, batch_id, message, retries)
        self.recorder.mark(ids, batch_id, "in_doubt", f"in doubt: {message}")
        self.tally.in_doubt_found += [InDoubt(r.delivery_id, r.email, batch_id, "kept (in_doubt_rule=assume_sent)")
                                      for r in recipients]
        self.tally.marked_in_doubt += len(ids)
        self.tally.errors.append(message)
        self.progress.advance(in_doubt=len(ids))
        return "in_doubt"
