"""One planner per edition: a lease row in the store, so two `digest send` runs never plan (or finish) the same
edition at once. Delivering is shared: workers (`digest worker`) claim send batches without this lease.

The lease is a `digest.schedule.lease` lease named ``send:edition:<id>``: it names its holder (host, process id
and a random run id), expires unless renewed, and is taken over once expired or when its holder is a process on
this host that no longer exists (a send killed with SIGKILL leaves its lease behind; the next run must not have
to wait for it to expire). Like every lease it runs on the real clock, never on a simulated ``--now``: a
scheduler pass "at" a future time must not see a live sender's lease as expired.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from digest.errors import SendError
from digest.schedule.lease import new_holder, release, renew, try_acquire
from digest.store.db import Store
from digest.store.tables import LeaseRow

LEASE_SECONDS = 300
log = logging.getLogger("digest.send")


class EditionBusy(SendError):
    """Another process is sending this edition right now."""


class EditionLease:
    def __init__(self, store: Store, edition_id: int, *, seconds: int = LEASE_SECONDS) -> None:
        self.store = store
        self.name = f"send:edition:{edition_id}"
        self.edition_id = edition_id
        self.ttl = timedelta(seconds=seconds)
        self.holder = new_holder()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        if try_acquire(self.store, self.name, self.holder, self.ttl):
            self._stop.clear()
            self._thread = threading.Thread(target=self._keep, name=self.name, daemon=True)
            self._thread.start()
            return
        with self.store.session() as s:
            row = s.get(LeaseRow, self.name)
            held = f" ({row.holder}, lease until {row.expires_at:%Y-%m-%d %H:%M:%S} UTC)" if row is not None else ""
        raise EditionBusy(f"edition {self.edition_id} is being sent by another process{held}; "
                          "wait for it to finish")

    def _keep(self) -> None:
        # Renewed in the background while `digest send` plans and delivers, however long that takes.
        while not self._stop.wait(max(self.ttl.total_seconds() / 3, 0.05)):
            try:
                if not renew(self.store, self.name, self.holder, self.ttl):
                    return
            except Exception:
                log.warning("could not renew lease %s; trying again", self.name, exc_info=True)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        release(self.store, self.name, self.holder)
