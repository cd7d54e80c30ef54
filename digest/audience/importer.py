"""Merging subscriber records into a list: the rules of `subscribers import` (and `add`), done in bulk.

The work is planned first against the list's current state (one query for every existing address, a few for
suppressions), then written: new rows and their audit entries with bulk inserts in chunks, field changes as one
bulk update, and status changes through ``lifecycle.change_status`` so each is audited. A dry run stops after the
plan, so it reports exactly what a real run would do. Running the same records twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from digest.audience.lifecycle import (
    SUPPRESSING_STATUSES,
    change_status,
    email_hash,
    email_key,
    suppressed_hashes,
)
from digest.store.tables import AuditRow, MailingListRow, SubscriberRow

CHUNK = 5000
# Called as progress(phase, done, total) so a face can draw a bar; the library itself prints nothing.
Progress = Callable[[str, int, int], None]
# Fields a record may set; None in a record means "not given: leave the stored value as it is".
FIELDS = ("name", "topics", "timezone", "send_time", "language")


@dataclass
class Record:
    """One subscriber as a file row or a command gave it, already validated; ``line`` is where it came from."""

    line: int | None
    email: str
    name: str | None = None
    topics: list[str] | None = None
    timezone: str | None = None
    send_time: str | None = None
    status: str | None = None
    language: str | None = None


@dataclass
class Issue:
    line: int | None
    email: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "email": self.email, "reason": self.reason}


@dataclass
class ImportReport:
    source: str
    list_name: str
    dry_run: bool = False
    rows: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Issue] = field(default_factory=list)
    held: list[Issue] = field(default_factory=list)  # kept unsubscribed/bounced/complained (no --resubscribe)
    to_confirm: list[int] = field(default_factory=list)  # ids of subscribers this import made pending
    confirmations_sent: int = 0
    confirmations_planned: int = 0  # how many the import makes pending (what a dry run would send)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.source, "list": self.list_name, "dry_run": self.dry_run, "rows": self.rows,
            "new": self.new, "updated": self.updated, "unchanged": self.unchanged,
            "rejected": len(self.rejected), "rejections": [i.to_json() for i in self.rejected],
            "held": [i.to_json() for i in self.held], "confirmations_sent": self.confirmations_sent,
            "confirmations_planned": self.confirmations_planned,
        }


@dataclass
class _Existing:
    id: int
    name: str | None
    status: str
    topics: list[str]
    timezone: str | None
    send_time: str | None
    language: str | None


def _load_existing(session: Session, list_id: int) -> dict[str, _Existing]:
    t = SubscriberRow
    rows = session.execute(select(t.email_key, t.id, t.name, t.status, t.topics, t.timezone, t.send_time,
                                  t.language).where(t.list_id == list_id))
    return {r[0]: _Existing(r[1], r[2], r[3], list(r[4] or []), r[5], r[6], r[7]) for r in rows}


def merge(session: Session, list_row: MailingListRow, records: Iterable[Record], *, source: str,
          actor: str, default_status: str = "active", resubscribe: bool = False, dry_run: bool = False,
          report: ImportReport | None = None, progress: Progress | None = None,
          now: datetime | None = None) -> ImportReport:
    """Apply ``records`` to the list inside the caller's transaction; see the module docstring for the rules."""
    now = now or datetime.now(UTC)
    report = report or ImportReport(source=source, list_name=list_row.name, dry_run=dry_run)
    records = list(records)
    report.rows += len(records)
    existing = _load_existing(session, list_row.id)
    hashes = [email_hash(r.email) for r in records]
    suppressed = suppressed_hashes(session, hashes)

    seen: dict[str, int | None] = {}
    inserts: list[dict[str, Any]] = []
    field_updates: list[dict[str, Any]] = []
    status_changes: dict[int, tuple[str, str]] = {}  # id -> (status, reason)
    done = 0
    for record, hashed in zip(records, hashes):
        done += 1
        if progress and done % CHUNK == 0:
            progress("checking", done, len(records))
        key = email_key(record.email)
        if key in seen:
            where = f"line {seen[key]}" if seen[key] is not None else "an earlier row"
            report.rejected.append(Issue(record.line, record.email, f"duplicate of {where} (same address)"))
            continue
        seen[key] = record.line
        if hashed in suppressed:
            report.rejected.append(Issue(record.line, record.email,
                                         "address is on the suppression list; it is never imported"))
            continue
        status = record.status or default_status
        old = existing.get(key)
        if old is None:
            report.new += 1
            inserts.append({
                "list_id": list_row.id, "email": record.email, "email_key": key, "name": record.name,
                "status": status, "topics": record.topics or [], "timezone": record.timezone,
                "send_time": record.send_time, "language": record.language, "source": source[:200],
                "created_at": now,
                "confirmed_at": now if status == "active" else None,
                "active_since": now if status == "active" else None,
                "unsubscribed_at": now if status == "unsubscribed" else None,
            })
            continue
        changes = _field_changes(old, record)
        new_status = _status_decision(old.status, status, resubscribe)
        if new_status == "held":
            report.held.append(Issue(record.line, record.email,
                                     f"kept {old.status} (pass --resubscribe to make it {status})"))
            new_status = None
        if changes:
            field_updates.append({"id": old.id, **changes})
        if new_status:
            reason = f"imported from {source}" + (" with --resubscribe" if old.status in SUPPRESSING_STATUSES else "")
            status_changes[old.id] = (new_status, reason)
        if changes or new_status:
            report.updated += 1
        else:
            report.unchanged += 1
    if progress:
        progress("checking", done, len(records))
    # Everyone this import makes pending (from --status pending or a status cell) is sent a confirmation: a
    # pending subscriber who never got one could never become active.
    report.confirmations_planned = sum(1 for d in inserts if d["status"] == "pending") + \
        sum(1 for status, _ in status_changes.values() if status == "pending")
    if dry_run:
        return report

    new_ids = _insert_new(session, list_row, inserts, actor=actor, source=source, now=now, progress=progress)
    for i in range(0, len(field_updates), CHUNK):
        # Rows with different changed fields need separate statements; group by the set of keys.
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for change in field_updates[i:i + CHUNK]:
            groups.setdefault(tuple(sorted(change)), []).append(change)
        for group in groups.values():
            session.execute(update(SubscriberRow), group)
    _apply_status_changes(session, status_changes, actor=actor, now=now)
    report.to_confirm.extend(sid for _, sid, status in new_ids if status == "pending")
    report.to_confirm.extend(sid for sid, (status, _) in status_changes.items() if status == "pending")
    return report


def _field_changes(old: _Existing, record: Record) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in FIELDS:
        value, current = getattr(record, name), getattr(old, name)
        if value is not None and value != ("" if current is None else current):
            changes[name] = value
    return changes


def _status_decision(current: str, target: str, resubscribe: bool) -> str | None:
    """The status to move to, None for no change, or "held" when only --resubscribe may leave a never-send status."""
    if current == target:
        return None
    if target in SUPPRESSING_STATUSES:
        return target  # leaving the mailing is always allowed
    if current in SUPPRESSING_STATUSES:
        return target if resubscribe else "held"
    if target == "pending":
        return None  # never demote an active subscriber to pending
    return target  # pending → active included: the import vouches that they opted in elsewhere


def _insert_new(session: Session, list_row: MailingListRow, inserts: list[dict[str, Any]], *, actor: str,
                source: str, now: datetime, progress: Progress | None) -> list[tuple[str, int, str]]:
    """Insert the new rows and their audit entries; returns (email, id, status) of each."""
    if not inserts:
        return []
    table = cast(Table, SubscriberRow.__table__)
    total = len(inserts) * 2
    for i in range(0, len(inserts), CHUNK):
        session.execute(insert(table), inserts[i:i + CHUNK])
        if progress:
            progress("writing", min(i + CHUNK, len(inserts)), total)
    by_key = {d["email_key"]: d for d in inserts}
    # One query for the new ids (portable; RETURNING with executemany is not on every driver).
    ids = session.execute(select(SubscriberRow.email_key, SubscriberRow.id)
                          .where(SubscriberRow.list_id == list_row.id)).all()
    created = [(by_key[key]["email"], sid, by_key[key]["status"]) for key, sid in ids if key in by_key]
    audits = [{"at": now, "list_id": list_row.id, "subscriber_id": sid, "email_key": email_key(email),
               "old_status": None, "new_status": status, "actor": actor, "reason": f"imported from {source}"}
              for email, sid, status in created]
    for i in range(0, len(audits), CHUNK):
        session.execute(insert(cast(Table, AuditRow.__table__)), audits[i:i + CHUNK])
        if progress:
            progress("writing", len(inserts) + min(i + CHUNK, len(audits)), total)
    return created


def _apply_status_changes(session: Session, changes: dict[int, tuple[str, str]], *, actor: str,
                          now: datetime) -> None:
    ids = list(changes)
    for i in range(0, len(ids), 500):
        for row in session.scalars(select(SubscriberRow).where(SubscriberRow.id.in_(ids[i:i + 500]))):
            status, reason = changes[row.id]
            change_status(session, row, status, actor=actor, reason=reason, now=now)
