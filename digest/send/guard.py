"""One sender per edition: a lease row in the store, so two `digest send` runs never send the same edition.

The lease is a `digest.schedule.lease` lease named ``send:edition:<id>``: it names its holder (host, process id
and a random run id), expires unless renewed, and is taken over once expired or when its holder is a process on
this host that no longer exists (a send killed with SIGKILL leaves its lease behind; the next run must not have
to wait for it to expire). Like every lease it runs on the real clock, never on a simulated ``--now``: a
scheduler pass "at" a future time must not see a live sender's lease as expired.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from digest.errors import SendError
from digest.schedule.lease import new_holder, release, try_acquire
from digest.store.db import Store
from digest.store.tables import LeaseRow

LEASE_SECONDS = 300


class EditionBusy(SendError):
    """Another process is sending this edition right now."""


class EditionLease:
    def __init__(self, store: Store, edition_id: int, *, seconds: int = LEASE_SECONDS) -> None:
        self.store = store
        self.name = f"send:edition:{edition_id}"
        self.edition_id = edition_id
        self.ttl = timedelta(seconds=seconds)
        self.holder = new_holder()

    def acquire(self) -> None:
        if try_acquire(self.store, self.name, self.holder, self.ttl):
            return
        with self.store.session() as s:
            row = s.get(LeaseRow, self.name)
            held = f" ({row.holder}, lease until {row.expires_at:%Y-%m-%d %H:%M:%S} UTC)" if row is not None else ""
        raise EditionBusy(f"edition {self.edition_id} is being sent by another process{held}; "
                          "wait for it to finish")

    def renew_in(self, session: Session) -> None:
        """Extend the lease inside the caller's transaction (the one that claims the next batch), so a batch is
        never claimed under a lease another process has taken meanwhile."""
        result = session.execute(update(LeaseRow).where(LeaseRow.name == self.name, LeaseRow.holder == self.holder)
                                 .values(expires_at=datetime.now(UTC) + self.ttl))
        if getattr(result, "rowcount", 1) == 0:
            raise EditionBusy(f"lost the send lease of edition {self.edition_id} to another process; stopping")

    def release(self) -> None:
        release(self.store, self.name, self.holder)
