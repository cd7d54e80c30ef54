"""The progress `digest send --workers N` draws from the store (`digest.send.watch`), read on a real database as
its delivery rows change, the way workers in other processes change them. Both databases."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import pytest
from sqlalchemy import update

from digest.send import outbox
from digest.send.watch import EditionWatch, SendProgress, progress_since, read_progress
from digest.store.db import Store
from digest.store.tables import DeliveryRow
from tests.feedback_support import World, build_world, settings_for
from tests.send_support import wait_for


@pytest.fixture
def world(tmp_path: Path, store: Store) -> World:
    """Three editions of three sent rows each (`build_world`); the first gets ten more rows to send."""
    with store.session() as s:
        w = build_world(s, settings_for(tmp_path, store.url))
        s.add_all([DeliveryRow(edition_id=w.editions[0], subscriber_id=1000 + i, email=f"reader{i}@example.com",
                               status="pending") for i in range(10)])
    return w


def _move(store: Store, edition_id: int, n: int, to: str, *, status: str = "pending") -> None:
    """``n`` of the edition's rows in ``status`` go to ``to``, as a worker's claim or record would move them."""
    with store.session() as s:
        ids = [i for i, _ in outbox.rows_with_status(s, edition_id, status, limit=n)]
        assert len(ids) == n
        s.execute(update(DeliveryRow).where(DeliveryRow.id.in_(ids)).values(status=to))


def test_progress_is_read_from_the_rows_as_they_change(store: Store, world: World) -> None:
    edition = world.editions[0]
    with store.session() as s:
        start = outbox.counts(s, edition)
        assert read_progress(s, edition, start) == SendProgress(
            total=10, done=0, counts={"sent": 0, "failed": 0, "skipped": 0, "in_doubt": 0})
    _move(store, edition, 4, "sending")  # claimed by a worker: not done yet
    with store.session() as s:
        assert read_progress(s, edition, start).done == 0
    _move(store, edition, 3, "sent", status="sending")
    _move(store, edition, 1, "in_doubt", status="sending")
    _move(store, edition, 2, "skipped")
    _move(store, edition, 1, "cancelled")
    with store.session() as s:
        now = read_progress(s, edition, start)
    # The three rows sent before the send began are not this send's; a cancelled row is done but not named.
    assert now == SendProgress(total=10, done=7, counts={"sent": 3, "failed": 0, "skipped": 2, "in_doubt": 1})
    # A released request's rows go back to pending: done goes back with them.
    _move(store, edition, 1, "pending", status="in_doubt")
    with store.session() as s:
        assert read_progress(s, edition, start).done == 6
    _move(store, edition, 4, "failed")
    with store.session() as s:
        assert read_progress(s, edition, start) == SendProgress(
            total=10, done=10, counts={"sent": 3, "failed": 4, "skipped": 2, "in_doubt": 0})
        # Another edition's rows are not counted.
        other = world.editions[1]
        assert read_progress(s, other, outbox.counts(s, other)) == SendProgress(
            total=0, done=0, counts={"sent": 0, "failed": 0, "skipped": 0, "in_doubt": 0})


def test_progress_stays_within_the_total() -> None:
    start = {"pending": 5, "sending": 1, "in_doubt": 2}
    # More settled than there was to do (in-doubt rows resent and sent): done stops at the total.
    assert progress_since(start, {"sent": 8}) == SendProgress(
        total=6, done=6, counts={"sent": 8, "failed": 0, "skipped": 0, "in_doubt": 0})
    assert progress_since(start, {"pending": 9}).done == 0


class _Display:
    def __init__(self) -> None:
        self.total: int | None = None
        self.shown: list[tuple[int, dict[str, int]]] = []
        self.finished = False
        self.lock = threading.Lock()

    def start(self, total: int) -> None:
        self.total = total

    def show(self, done: int, counts: Mapping[str, int]) -> None:
        with self.lock:
            self.shown.append((done, dict(counts)))

    def finish(self) -> None:
        self.finished = True

    def last(self) -> tuple[int, dict[str, int]] | None:
        with self.lock:
            return self.shown[-1] if self.shown else None


def test_the_watch_polls_until_stopped_and_shows_the_final_count(store: Store, world: World) -> None:
    edition = world.editions[0]
    with store.session() as s:
        start = outbox.counts(s, edition)
    display = _Display()
    watch = EditionWatch(store, edition, start, display, interval=0.05)
    watch.start()
    try:
        assert display.total == 10
        _move(store, edition, 4, "sent")
        wait_for(lambda: (display.last() or (0, {}))[0] == 4, what="a poll that saw four rows sent")
    finally:
        watch.stop()
    assert display.finished
    polls = len(display.shown)
    # The last rows settle just before the send ends; stopping reads them once more, then polls no longer.
    _move(store, edition, 6, "sent")
    watch = EditionWatch(store, edition, start, display, interval=3600)
    watch.start()
    watch.stop()
    assert display.shown[-1] == (10, {"sent": 10, "failed": 0, "skipped": 0, "in_doubt": 0})
    assert len(display.shown) == polls + 1
