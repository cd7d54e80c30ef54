"""Refusals of single recipients at send time: a bounce recorded as the webhook records one, a deferral retried.

A server that answers ``550 5.1.1 User unknown`` for one reader (or SendGrid's 400 naming one address) has told
us at once what a bounce webhook would tell us later: the delivery fails with the server's reply, and a hard
bounce is recorded through the feedback part's own path (`digest.feedback.process.apply_events`): the address is
suppressed on every list, each subscriber moved to ``bounced`` with an audit entry, and `digest stats` counts
it. The next send skips them.

A temporary refusal (4xx) goes back to ``pending`` and is tried again once the rest of the edition went out, after
a backoff, up to ``send_max_retries`` times; then it fails with the last reply. The connection meanwhile carries
on with the next reader. Such rows wait in a send batch of their own, claimed by the worker that met the refusal
(so no other worker takes them before the backoff, and a worker that dies leaves them to `recover` as any
claimed batch), and open for any worker once that worker has nothing else left (`next_round`).

`deliver` calls this for every request, so `digest send` and every `digest worker` record refusals alike.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from digest.feedback.events import BounceType, EventType, TrackingEvent
from digest.feedback.process import apply_events
from digest.send import outbox
from digest.send.backends.base import BatchResult
from digest.send.claim import new_batch
from digest.send.rate import backoff_delay, sleep_until
from digest.store.db import Store
from digest.store.tables import DeliveryRow, SendBatchRow


def bounce_events(rows: list[tuple[int, int, str, int]], replies: dict[int, str], provider: str,
                  now: datetime) -> list[TrackingEvent]:
    """One hard-bounce event per refused delivery (id, edition, address, subscriber). Its id is the delivery's, so
    recording it twice (a resumed run) counts once."""
    return [TrackingEvent(provider=provider, provider_event_id=f"send-bounce:{delivery_id}", type=EventType.BOUNCED,
                          timestamp=now, email=email, edition_id=edition_id, subscriber_id=subscriber_id,
                          reason=replies[delivery_id][:2000], bounce_type=BounceType.HARD,
                          esp_event="send-time bounce",
                          raw={"event": "bounce", "at": "send", "delivery_id": delivery_id,
                               "reason": replies[delivery_id][:2000]})
            for delivery_id, edition_id, email, subscriber_id in rows]


class Refusals:
    """The per-recipient refusals of one send run."""

    def __init__(self, store: Store, settings: Any, provider: str, holder: str) -> None:
        self.store = store
        self.settings = settings
        self.provider = provider
        self.holder = holder
        self.tries: Counter[int] = Counter()
        self.waiting: dict[int, int] = {}  # edition id → the send batch its deferred rows wait in
        self.rounds = 0
        self.bounced = 0

    def handle(self, result: BatchResult, batch_id: str, apply_deferred: Callable[[Any], None],
               edition_id: int) -> tuple[int, int]:
        """Record the bounces and deferrals of a request, before its ``sent`` outcome (which covers every row
        it leaves ``sending``; ``apply_deferred`` commits the previous request's in this transaction);
        returns (deliveries failed, deliveries to try again later)."""
        if not (result.bounced or result.later):
            return 0, 0
        now = datetime.now(UTC)
        failed = later = 0
        max_tries = int(self.settings.send_max_retries)
        with self.store.session() as s:
            apply_deferred(s)
            for delivery_id, reply in result.bounced.items():
                outbox.set_status(s, [delivery_id], "failed", now, expect="sending", batch_id=batch_id,
                                  error=f"bounced: {reply}")
            if result.bounced:
                rows = [(r[0], r[1], r[2], r[3]) for r in s.execute(
                    select(DeliveryRow.id, DeliveryRow.edition_id, DeliveryRow.email, DeliveryRow.subscriber_id)
                    .where(DeliveryRow.id.in_(list(result.bounced))))]
                apply_events(s, self.settings, bounce_events(rows, result.bounced, self.provider, now), now=now,
                             actor=f"send:{self.provider}")
                failed += len(result.bounced)
                self.bounced += len(result.bounced)
            for delivery_id, reply in result.later.items():
                self.tries[delivery_id] += 1
                if self.tries[delivery_id] > max_tries:
                    outbox.set_status(s, [delivery_id], "failed", now, expect="sending", batch_id=batch_id,
                                      error=f"{reply} (still refused after {max_tries} retries)")
                    failed += 1
                elif outbox.set_status(s, [delivery_id], "pending", now, expect="sending", batch_id=None,
                                       error=f"tried again later: {reply}"):
                    s.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id)
                              .values(work_batch=self._waiting_batch(s, edition_id))
                              .execution_options(synchronize_session=False))
                    later += 1
        return failed, later

    def _waiting_batch(self, session: Any, edition_id: int) -> int:
        batch = self.waiting.get(edition_id)
        if batch is None:
            batch = self.waiting[edition_id] = new_batch(session, edition_id, None, status="claimed",
                                                         holder=self.holder)
        return batch

    def next_round(self, stop: Any) -> bool:
        """Once the rest went out: wait a backoff and say whether deferred deliveries are to be tried again."""
        if not self.waiting or stop.is_set():
            return False
        self.rounds += 1
        sleep_until(time.monotonic() + backoff_delay(self.rounds, float(self.settings.send_backoff_seconds)), stop)
        if stop.is_set():
            return False  # the batches stay claimed by this holder: the next run's `recover` reopens them
        batches, self.waiting = list(self.waiting.values()), {}
        with self.store.session() as s:
            s.execute(update(SendBatchRow).where(SendBatchRow.id.in_(batches), SendBatchRow.holder == self.holder)
                      .values(status="open", holder=None).execution_options(synchronize_session=False))
        return True
