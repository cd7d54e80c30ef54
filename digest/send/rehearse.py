"""Dry run and sandbox: plan and render an edition (and, sandbox, have SendGrid validate every request it would
make) in a transaction that is rolled back: nothing stored, nothing delivered."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from digest.config import Settings
from digest.send import outbox
from digest.send.backends.base import Backend, Content, Recipient
from digest.send.deliver import batch_size
from digest.send.plan import Planner, SubscriberFilter, content_for, skip_thin
from digest.send.recipients import RecipientMaker
from digest.send.summary import SendSummary
from digest.store.db import Store
from digest.store.tables import EditionRow


def rehearse(store: Store, settings: Settings, edition_id: int, summary: SendSummary, backend: Backend | None,
             now: datetime, subscriber_filter: SubscriberFilter | None) -> SendSummary:
    """Plan, render and (sandbox) validate with the provider, then roll everything back."""
    planner = Planner(settings, edition_id, now, subscriber_filter=subscriber_filter)
    session = store.new_session()
    try:
        with session.begin():
            edition = session.get(EditionRow, edition_id)
            assert edition is not None
            if not outbox.counts(session, edition_id) and skip_thin(session, settings, edition, summary):
                summary.status = "skipped"
                session.rollback()
                return summary
            after = 0
            sandbox = _SandboxRequests(settings, backend, edition, summary) if backend is not None else None
            while True:
                chunk = planner.plan_chunk(session, after, write=False)
                summary.recipients += len(chunk.pending)
                summary.skipped += len(chunk.skipped)
                if sandbox is not None:
                    sandbox.add(session, chunk.pending)
                after = chunk.last_id
                if chunk.done:
                    break
            if sandbox is not None:
                sandbox.flush(session)
            summary.variants = len(planner.variants)
            summary.subjects = [v.subject for v in planner.variants.values()]
            summary.status = edition.status
            session.rollback()
    finally:
        session.close()
        if backend is not None:
            backend.close()
    return summary


class _SandboxRequests:
    """The requests of a sandbox run, cut as a real run cuts them: per variant, `batch_size` recipients each,
    with a planning chunk's remainder carried into the next chunk, so the provider validates the same requests."""

    def __init__(self, settings: Settings, backend: Backend, edition: EditionRow, summary: SendSummary) -> None:
        self.backend = backend
        self.edition = edition
        self.summary = summary
        self.size = batch_size(settings, backend)
        self.waiting: dict[int, list[Recipient]] = {}
        self.contents: dict[int, Content] = {}  # each variant rendered once, not once per chunk
        self.recipients = RecipientMaker(settings)

    def add(self, session: Session, pending: list[tuple[Any, int]]) -> None:
        for sub, variant_id in pending:
            waiting = self.waiting.setdefault(variant_id, [])
            waiting.append(self.recipients.recipient(0, self.edition.list_id, sub.id, sub.email, sub.name))
            if len(waiting) >= self.size:
                self._send(session, variant_id)

    def flush(self, session: Session) -> None:
        for variant_id, waiting in self.waiting.items():
            if waiting:
                self._send(session, variant_id)

    def _send(self, session: Session, variant_id: int) -> None:
        batch, self.waiting[variant_id] = self.waiting[variant_id], []
        if variant_id not in self.contents:
            self.contents[variant_id] = content_for(session, self.edition.id, variant_id)
        self.backend.send_batch(self.contents[variant_id], batch)
        self.summary.requests += 1
        self.summary.sent += len(batch)
