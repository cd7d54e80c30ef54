"""A worker: claims send batches, delivers them, records outcomes, until nothing is left (or, ``forever``,
waiting for more). `digest send` runs one in its own process; `digest worker` runs one per process, on any
machine connected to the same PostgreSQL, and `digest send --workers N` starts N of them here.

Exactly once across workers rests on the store: a batch is claimed by one worker (SKIP LOCKED), its rows are
claimed ``sending`` before the request and recorded after it, and a dead worker's batch is recovered by the
in-doubt rules (`recover`), at most one request in doubt per dead worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.errors import SendError
from digest.schedule.lease import Lease, new_holder
from digest.send.backends.base import Backend
from digest.send.claim import WORKER_LEASE, claim_batch, finish_batch, next_batch, worker_lease_name
from digest.send.deliver import Deliverer
from digest.send.record import settle_edition
from digest.send.recover import recover
from digest.send.summary import NoProgress, Progress, Tally, WorkerSummary
from digest.store.db import Store
from digest.store.tables import EditionRow, MailingListRow, SendBatchRow

POLL_SECONDS = 2.0


class WorkersNeedPostgres(SendError):
    """Workers share an edition through PostgreSQL's row locks; SQLite has one sending process."""

    exit_code = 2


def require_postgres(store: Store, what: str) -> None:
    if store.dialect != "postgresql":
        raise WorkersNeedPostgres(
            f"{what} needs PostgreSQL: on SQLite an edition is sent by one process, `digest send` (SQLite has no "
            "row locks for several workers to share it). Point database_url at PostgreSQL to use workers.")


class Worker:
    def __init__(self, store: Store, settings: Settings, backend: Backend, tally: Tally, stop: threading.Event, *,
                 progress: Progress | None = None, holder: str | None = None,
                 edition_ids: Sequence[int] | None = None, list_name: str | None = None) -> None:
        self.store = store
        self.settings = settings
        self.backend = backend
        self.tally = tally
        self.stop = stop
        self.holder = holder or new_holder()
        self.edition_ids = list(edition_ids) if edition_ids is not None else None
        self.list_name = list_name
        self.deliverer = Deliverer(store, settings, backend, tally, stop, progress or NoProgress(), self.holder)
        self.deliverer.peek_next = lambda s: next_batch(s, edition_ids=self.edition_ids, list_name=self.list_name)
        self.touched: set[int] = set()

    def run(self, *, forever: bool = False) -> None:
        try:
            self._run(forever)
        finally:
            self.deliverer.close()

    def _run(self, forever: bool) -> None:
        with Lease(self.store, worker_lease_name(self.holder), ttl=WORKER_LEASE, holder=self.holder):
            while not self.stop.is_set():
                with self.store.session() as s:
                    claimed = claim_batch(s, self.holder, edition_ids=self.edition_ids, list_name=self.list_name)
                if claimed is None:
                    if self._recover_dead():
                        continue
                    if self.deliverer.refusals.next_round(self.stop):
                        continue  # readers refused for now (SMTP 4xx) are tried again once the rest went out
                    self._settle()
                    if not forever:
                        return
                    self.stop.wait(POLL_SECONDS)
                    continue
                self._deliver(*claimed)

    def _deliver(self, batch: int, edition_id: int) -> None:
        self.touched.add(edition_id)
        outcome = "stopped"
        deliverer = self.deliverer
        try:
            outcome = deliverer.deliver(batch, edition_id, then=self._hand_over)
        finally:
            deliverer.recorder.flush()  # before the batch is handed back: no row left `sending` in it
            if deliverer.batch is not None:
                with self.store.session() as s:
                    finish_batch(s, deliverer.batch, self.holder, done=outcome != "stopped")
                if outcome == "done":
                    self.tally.batches += 1

    def _hand_over(self, session: Session, finished: int) -> tuple[int, int] | None:
        """A batch is done: hand it back and claim the next, in the transaction that found it done (one commit
        per request, not three)."""
        finish_batch(session, finished, self.holder, done=True)
        self.tally.batches += 1
        claimed = claim_batch(session, self.holder, edition_ids=self.edition_ids, list_name=self.list_name)
        if claimed is not None:
            self.touched.add(claimed[1])
        return claimed

    def _editions(self) -> list[int]:
        if self.edition_ids is not None:
            return self.edition_ids
        query = select(EditionRow.id).where(EditionRow.status == "sending")
        if self.list_name is not None:
            query = query.join(MailingListRow, MailingListRow.id == EditionRow.list_id).where(
                MailingListRow.name == self.list_name)
        with self.store.session() as s:
            return list(s.scalars(query))

    def _recover_dead(self) -> int:
        """Batches of dead workers, once no open batch is left: taken over, their in-flight request resolved by
        the in-doubt rules, the rest reopened (and claimed by the loop)."""
        taken = 0
        for edition_id in self._editions():
            with self.store.session() as s:
                held = s.scalar(select(SendBatchRow.id).where(SendBatchRow.edition_id == edition_id,
                                                              SendBatchRow.status == "claimed").limit(1))
            if held is not None:
                taken += recover(self.store, self.settings, self.backend, edition_id, self.tally, self.holder,
                                 unclaimed=False, now_ts=time.time())
        return taken

    def _settle(self) -> None:
        for edition_id in sorted(self.touched):
            with self.store.session() as s:
                settle_edition(s, edition_id)


def run_worker(store: Store, settings: Settings, backend: Backend, stop: threading.Event, *,
               list_name: str | None = None, edition_ids: Sequence[int] | None = None,
               forever: bool = False) -> WorkerSummary:
    """`digest worker`: join every sending edition (or the list's, or the given ones) until none is left."""
    require_postgres(store, "`digest worker`")
    summary = WorkerSummary()
    worker = Worker(store, settings, backend, summary, stop, edition_ids=edition_ids, list_name=list_name)
    summary.holder = worker.holder
    with backend:
        worker.run(forever=forever)
    summary.editions = sorted(worker.touched)
    return summary


class LocalWorkers:
    """`digest send --workers N`: N `digest worker` processes for one edition, started here and waited for."""

    def __init__(self, n: int, edition_id: int, settings: Settings, database_url: str, *,
                 via: str | None = None) -> None:
        self.n = n
        self.edition_id = edition_id
        self.via = via
        # The workers read the same configuration and store as this process, wherever they were found.
        self.env = {**os.environ, "DIGEST_DATABASE_URL": database_url}
        if settings.source is not None:
            self.env["DIGEST_CONFIG"] = str(settings.source)
        self.cwd = settings.project_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        args = [sys.executable, "-m", "digest", "worker", "--edition", str(self.edition_id), "--json"]
        if self.via:
            args += ["--via", self.via]
        for _ in range(self.n):
            self.procs.append(subprocess.Popen(args, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE))

    def stop(self) -> None:
        """What a SIGINT/SIGTERM to `digest send` does: each worker finishes its request in flight and exits."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def wait(self, tally: Tally) -> list[str]:
        """Wait for every worker; add what each did to ``tally``. Returns the errors of workers that failed."""
        problems: list[str] = []
        for i, proc in enumerate(self.procs):
            out, err = proc.communicate()
            try:
                tally.add(WorkerSummary.from_json(json.loads(out)))
            except ValueError:
                problems.append(f"worker {i + 1} (pid {proc.pid}) exited {proc.returncode}: "
                                f"{err.decode('utf-8', 'replace').strip()[-500:]}")
        return problems
