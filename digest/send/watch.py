"""A send's progress as the store sees it, for `digest send --workers N`: every worker's, on any machine.

Each worker can only count what its own process did (`digest.send.progress` is fed from inside the delivering
code); the edition's delivery rows are the one place where all of them show. So the process that started the
send polls the rows' counts by status, a GROUP BY that the (edition_id, status) index answers, every half second,
and draws the bar from the difference to the counts it started with.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from digest.send import outbox
from digest.store.db import Store

POLL_SECONDS = 0.5
# What the bar counts, the names a single process's bar uses; `cancelled` rows count as done but are not named.
OUTCOMES = ("sent", "failed", "skipped", "in_doubt")
# Rows the send still has to settle: waiting, or in a worker's request right now.
LEFT = ("pending", "sending")


@dataclass(frozen=True)
class SendProgress:
    total: int  # rows left to settle when the send started
    done: int  # of those, settled since (never more than total, never less than 0)
    counts: dict[str, int] = field(default_factory=dict)  # OUTCOMES reached since the start


def progress_since(start: Mapping[str, int], now: Mapping[str, int]) -> SendProgress:
    """The progress between two readings of `outbox.counts`. Rows can move back (a released request's rows go
    back to pending, a dead worker's in-doubt rows are resent), so done is what is left now, not a running sum."""
    total = sum(start.get(status, 0) for status in LEFT)
    left = sum(now.get(status, 0) for status in LEFT)
    return SendProgress(total=total, done=min(total, max(0, total - left)),
                        counts={name: max(0, now.get(name, 0) - start.get(name, 0)) for name in OUTCOMES})


def read_progress(session: Session, edition_id: int, start: Mapping[str, int]) -> SendProgress:
    """The edition's progress now, against ``start`` (its `outbox.counts` when the send began)."""
    return progress_since(start, outbox.counts(session, edition_id))


class Display(Protocol):
    """What draws the polled numbers (`RichProgress`): absolute values, not one process's increments."""

    def start(self, total: int) -> None: ...
    def show(self, done: int, counts: Mapping[str, int]) -> None: ...
    def finish(self) -> None: ...


class EditionWatch:
    """Polls an edition's delivery counts in a thread of its own and shows them, from `start` until `stop`."""

    def __init__(self, store: Store, edition_id: int, start: Mapping[str, int], display: Display, *,
                 interval: float = POLL_SECONDS) -> None:
        self.store = store
        self.edition_id = edition_id
        self.start_counts = dict(start)
        self.display = display
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.display.start(progress_since(self.start_counts, self.start_counts).total)
        # A daemon: a send that ends in an exception must not wait for its progress bar to exit.
        self._thread = threading.Thread(target=self._run, name=f"send-watch-{self.edition_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        try:
            with self.store.session() as s:
                progress = read_progress(s, self.edition_id, self.start_counts)
        except SQLAlchemyError:
            return  # a bar is not worth failing a send for: the next poll tries again
        self.display.show(progress.done, progress.counts)

    def stop(self) -> None:
        """Stops polling; shows the final numbers (the last tick may be up to an interval old) and ends the bar."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self.poll()
        self.display.finish()
