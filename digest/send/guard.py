"""One sender per edition: a lease row in the store, so two `digest send` runs never send the same edition.

The lease names its holder (host, process id and a random run id) and expires unless renewed. A run may take
over a lease that has expired, or whose holder is a process on this host that no longer exists (a send
killed with SIGKILL leaves its lease behind; the next run must not have to wait for it to expire).
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.errors import SendError
from digest.schedule.lease import dead_here, new_holder
from digest.store.db import Store
from digest.store.tables import LeaseRow

LEASE_SECONDS = 300


class EditionBusy(SendError):
    """Another process is sending this edition right now."""


def _holder_alive(holder: str) -> bool:
    # A lease of ours from an earlier, finished run in this process is as good as dead.
    return holder.split(":")[:2] != [socket.gethostname(), str(os.getpid())] and not dead_here(holder)


class EditionLease:
    def __init__(self, store: Store, edition_id: int, *, seconds: int = LEASE_SECONDS) -> None:
        self.store = store
        self.name = f"send:edition:{edition_id}"
        self.edition_id = edition_id
        self.seconds = seconds
        self.holder = new_holder()

    def acquire(self, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        try:
            with self.store.session() as s:
                row = s.get(LeaseRow, self.name, with_for_update=True)
                if row is None:
                    s.add(LeaseRow(name=self.name, holder=self.holder, expires_at=now + timedelta(seconds=self.seconds)))
                    return
                if row.holder != self.holder and row.expires_at > now and _holder_alive(row.holder):
                    raise EditionBusy(f"edition {self.edition_id} is being sent by another process ({row.holder}, "
                                      f"lease until {row.expires_at:%Y-%m-%d %H:%M:%S} UTC); wait for it to finish")
                row.holder = self.holder
                row.expires_at = now + timedelta(seconds=self.seconds)
        except IntegrityError:
            # Another run inserted the lease between our read and our insert.
            raise EditionBusy(f"edition {self.edition_id} is being sent by another process") from None

    def renew_in(self, session: Session, now: datetime | None = None) -> None:
        """Extend the lease inside the caller's transaction (the one that claims the next batch)."""
        now = now or datetime.now(UTC)
        result = session.execute(update(LeaseRow).where(LeaseRow.name == self.name, LeaseRow.holder == self.holder)
                                 .values(expires_at=now + timedelta(seconds=self.seconds)))
        if getattr(result, "rowcount", 1) == 0:
            raise EditionBusy(f"lost the send lease of edition {self.edition_id} to another process; stopping")

    def release(self) -> None:
        with self.store.session() as s:
            s.execute(delete(LeaseRow).where(LeaseRow.name == self.name, LeaseRow.holder == self.holder))
