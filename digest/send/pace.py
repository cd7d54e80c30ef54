"""Provider limits shared by every worker, kept in the store (`send_pace`, one row per backend).

A 429 seen by any worker pauses them all until its ``X-RateLimit-Reset``; ``send_rate`` is one budget for all
workers together: each request reserves its messages' share of time from a common ``next_slot`` and waits for
it. Times are Unix seconds on the real clock, which machines sharing a database agree on (NTP), unlike a
monotonic clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from digest.send.rate import sleep_until
from digest.store.db import Store
from digest.store.tables import SendPaceRow


class SharedPace:
    def __init__(self, store: Store, backend: str, per_second: float, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.backend = backend
        self.per_second = per_second
        self.clock = clock
        self._ensured = False

    def _ensure(self, session: Session) -> None:
        if self._ensured:
            return
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(insert(SendPaceRow).values(backend=self.backend, paused_until=0.0, next_slot=0.0)
                        .on_conflict_do_nothing(index_elements=["backend"]))
        self._ensured = True

    def paused_until(self, session: Session) -> float:
        """Until when every worker holds its requests (0: not paused). Read in the caller's transaction."""
        value = session.scalar(select(SendPaceRow.paused_until).where(SendPaceRow.backend == self.backend))
        return float(value or 0.0)

    def pause(self, until: float) -> None:
        """A 429: no worker sends before ``until`` (a later pause already stored is kept)."""
        with self.store.session() as s:
            self._ensure(s)
            s.execute(update(SendPaceRow).where(SendPaceRow.backend == self.backend,
                                                SendPaceRow.paused_until < until)
                      .values(paused_until=until).execution_options(synchronize_session=False))

    def wait(self, n: int, stop: threading.Event | None = None) -> bool:
        """Reserve time for ``n`` messages under send_rate and sleep until it starts; False if stopped."""
        if self.per_second <= 0 or n <= 0:
            return not (stop and stop.is_set())
        with self.store.session() as s:
            self._ensure(s)
            # FOR UPDATE: two workers reserving at once queue on the row instead of taking the same slot.
            row = s.execute(select(SendPaceRow).where(SendPaceRow.backend == self.backend)
                            .with_for_update()).scalar_one()
            start = max(self.clock(), float(row.next_slot or 0.0))
            row.next_slot = start + n / self.per_second
        return sleep_until(start, stop, clock=self.clock)
