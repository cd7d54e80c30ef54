"""A named lease in the database, so two schedulers (on one machine or many) never work the same list at once.

Acquiring is one atomic statement on SQLite and PostgreSQL alike: ``INSERT ... ON CONFLICT (name) DO UPDATE
... WHERE the lease has expired or is already ours RETURNING holder``: a row back means we got it. A holder that
dies simply stops renewing, and the lease is free again once ``expires_at`` passes (at once when the holder was a
process on this machine that no longer exists). Leases use the real clock, never a
simulated ``--now``: they are about processes, not about the schedule.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from digest.store.db import Store
from digest.store.tables import LeaseRow

log = logging.getLogger("digest.schedule")


def new_holder() -> str:
    """Who holds a lease, readable in the table: host, process id, and a random part against pid reuse."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _now() -> datetime:
    return datetime.now(UTC)


def try_acquire(store: Store, name: str, holder: str, ttl: timedelta, now: datetime | None = None) -> bool:
    """Take (or extend, if already ours) the lease ``name`` until now + ttl. False if someone else holds it."""
    now = now or _now()
    insert = pg_insert if store.dialect == "postgresql" else sqlite_insert
    stmt = insert(LeaseRow).values(name=name, holder=holder, expires_at=now + ttl)
    upsert = stmt.on_conflict_do_update(
        index_elements=[LeaseRow.name],
        set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
        where=(LeaseRow.expires_at < now) | (LeaseRow.holder == holder),
    ).returning(LeaseRow.holder)
    # RETURNING rather than the row count: psycopg 3 reports -1 for an upsert's row count.
    with store.engine.begin() as conn:
        if conn.execute(upsert).scalar() == holder:
            return True
        # A holder on this machine whose process is gone (killed with SIGKILL) will never renew: take its lease
        # over now rather than after it expires, so a scheduler restarted at once resumes the list at once.
        current = conn.execute(select(LeaseRow.holder).where(LeaseRow.name == name)).scalar()
        if current is None or not dead_here(current):
            return False
        conn.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == current))
        log.info("lease %s: its holder %s is no longer running; taken over", name, current)
        return conn.execute(upsert).scalar() == holder


def dead_here(holder: str) -> bool:
    """True only for a holder on this host whose process no longer exists (never for this process itself)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: someone else's live process
        return False
    return False


def renew(store: Store, name: str, holder: str, ttl: timedelta, now: datetime | None = None) -> bool:
    """Push our lease's expiry to now + ttl. False if it is no longer ours (it expired and was taken)."""
    now = now or _now()
    with store.engine.begin() as conn:
        result = conn.execute(update(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder)
                              .values(expires_at=now + ttl))
        return result.rowcount == 1


def release(store: Store, name: str, holder: str) -> bool:
    """Give the lease back (only if it is ours)."""
    with store.engine.begin() as conn:
        result = conn.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder))
        return result.rowcount == 1


class Lease:
    """A lease held for the length of a ``with`` block, renewed in the background so long work keeps it.

    ``held`` says whether it was acquired; the block runs either way, so callers check it.
    """

    def __init__(self, store: Store, name: str, *, ttl: timedelta = timedelta(minutes=5),
                 holder: str | None = None) -> None:
        self.store = store
        self.name = name
        self.ttl = ttl
        self.holder = holder or new_holder()
        self.held = False
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self.held = try_acquire(self.store, self.name, self.holder, self.ttl)
        if self.held:
            self._thread = threading.Thread(target=self._heartbeat, name=f"lease:{self.name}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.held:
            release(self.store, self.name, self.holder)
            self.held = False

    def _heartbeat(self) -> None:
        interval = max(self.ttl.total_seconds() / 3, 0.05)
        while not self._stop.wait(interval):
            try:
                if not renew(self.store, self.name, self.holder, self.ttl):
                    self.lost = True
                    log.warning("lease %s was lost (it expired and another scheduler took it)", self.name)
                    return
            except Exception:  # a database hiccup: try again next beat, the lease still has ttl to run
                log.exception("could not renew lease %s", self.name)
