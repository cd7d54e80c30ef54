"""The database lease that keeps two schedulers off the same list, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from digest.schedule.lease import Lease, release, renew, try_acquire
from digest.store.db import Store
from digest.store.tables import LeaseRow

MINUTE = timedelta(minutes=1)


def holder_of(store: Store, name: str) -> str | None:
    with store.session() as s:
        return s.scalar(select(LeaseRow.holder).where(LeaseRow.name == name))


def test_one_holder_at_a_time(store: Store) -> None:
    assert try_acquire(store, "schedule:daily", "a", MINUTE)
    assert not try_acquire(store, "schedule:daily", "b", MINUTE)
    assert try_acquire(store, "schedule:daily", "a", MINUTE)  # re-acquiring our own extends it
    assert try_acquire(store, "schedule:weekly", "b", MINUTE)  # another name is another lease
    assert not release(store, "schedule:daily", "b")  # only the holder can release
    assert holder_of(store, "schedule:daily") == "a"
    assert release(store, "schedule:daily", "a")
    assert holder_of(store, "schedule:daily") is None
    assert try_acquire(store, "schedule:daily", "b", MINUTE)


def test_expired_lease_can_be_taken_and_the_old_holder_notices(store: Store) -> None:
    now = datetime.now(UTC)
    assert try_acquire(store, "l", "dead", MINUTE, now=now - timedelta(minutes=5))  # expired 4 minutes ago
    assert try_acquire(store, "l", "alive", MINUTE, now=now)
    assert holder_of(store, "l") == "alive"
    assert not renew(store, "l", "dead", MINUTE)
    assert renew(store, "l", "alive", MINUTE)


def test_racing_acquirers_get_exactly_one_lease(store: Store) -> None:
    contenders = 8
    barrier = threading.Barrier(contenders)
    winners: list[str] = []
    lock = threading.Lock()

    def contend(i: int) -> None:
        barrier.wait()
        if try_acquire(store, "race", f"h{i}", MINUTE):
            with lock:
                winners.append(f"h{i}")

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert holder_of(store, "race") == winners[0]


def test_lease_context_renews_while_held_and_releases_at_the_end(store: Store) -> None:
    with Lease(store, "long", ttl=timedelta(seconds=1.5)) as lease:
        assert lease.held
        time.sleep(3.5)  # well past the ttl: the heartbeat kept it
        with Lease(store, "long", ttl=MINUTE) as other:
            assert not other.held
        assert holder_of(store, "long") == lease.holder
        assert not lease.lost
    assert holder_of(store, "long") is None
    with Lease(store, "long") as again:
        assert again.held


def test_lease_released_when_the_block_raises(store: Store) -> None:
    try:
        with Lease(store, "boom", ttl=MINUTE) as lease:
            assert lease.held
            raise RuntimeError("work failed")
    except RuntimeError:
        pass
    assert holder_of(store, "boom") is None


def test_a_lease_whose_holder_process_is_gone_is_taken_over_at_once(store: Store) -> None:
    import os
    import socket
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid names no process now
    here = socket.gethostname()
    assert try_acquire(store, "schedule:daily", f"{here}:{gone.pid}:deadbeef", MINUTE)
    assert try_acquire(store, "schedule:daily", f"{here}:{os.getpid()}:next", MINUTE)  # not waiting for expiry
    # A live process here, or a process on another machine, keeps its lease until it expires.
    assert try_acquire(store, "schedule:weekly", f"{here}:{os.getppid()}:parent", MINUTE)
    assert not try_acquire(store, "schedule:weekly", f"{here}:{os.getpid()}:next", MINUTE)
    assert try_acquire(store, "schedule:monthly", f"elsewhere.example:{gone.pid}:remote", MINUTE)
    assert not try_acquire(store, "schedule:monthly", f"{here}:{os.getpid()}:next", MINUTE)
    # Our own process's other holders (threads) are never taken for dead.
    assert try_acquire(store, "schedule:yearly", f"{here}:{os.getpid()}:thread-a", MINUTE)
    assert not try_acquire(store, "schedule:yearly", f"{here}:{os.getpid()}:thread-b", MINUTE)
