"""Subscriber import: digest's bulk merge against a naive one-ORM-object-and-query-per-row import.

Both read the same fictional CSV into a fresh SQLite store. The naive baseline runs on a sample (it is slow by
design) and both are compared in rows per second.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import select

from benchmarks.harness import BenchResult, scaled, timed
from digest.audience.csv import read_csv
from digest.audience.importer import merge
from digest.audience.lifecycle import change_status, email_key, is_suppressed
from digest.audience.lists import ensure_list
from digest.audience.validate import normalize_email
from digest.config import load_settings
from digest.store.db import Store
from digest.store.tables import AuditRow, SubscriberRow


def write_sample(path: Path, n: int) -> None:
    """Fictional subscribers on a few hundred made-up domains, 1% of them invalid."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("email,name,topics,timezone\n")
        for i in range(n):
            address = f"reader{i}@example{i % 301}.org" if i % 100 else f"broken-{i}"
            fh.write(f"{address},Reader {i},,Europe/Berlin\n")


def digest_import(store: Store, path: Path) -> int:
    settings = load_settings(cwd=path.parent, environ={})
    parsed = read_csv(path)
    with store.session() as session:
        report = merge(session, ensure_list(session, settings), parsed.records, source=path.name, actor="bench")
    return report.new + len(parsed.rejected)


def naive_import(store: Store, path: Path, limit: int) -> int:
    """What an import written without thought for volume does: per row, one lookup, one object, one flush."""
    settings = load_settings(cwd=path.parent, environ={})
    lines = path.read_text(encoding="utf-8").splitlines()[1:limit + 1]
    with store.session() as session:
        list_row = ensure_list(session, settings)
        for line in lines:
            address, name, _topics, tz = line.split(",")
            try:
                address = normalize_email(address)
            except ValueError:
                continue
            if is_suppressed(session, address):
                continue
            existing = session.scalar(select(SubscriberRow).where(SubscriberRow.list_id == list_row.id,
                                                                  SubscriberRow.email_key == email_key(address)))
            if existing is None:
                row = SubscriberRow(list_id=list_row.id, email=address, email_key=email_key(address), name=name,
                                    timezone=tz, status="pending")
                session.add(row)
                session.flush()
                change_status(session, row, "active", actor="bench")
                session.flush()
    return len(lines)


def run() -> list[BenchResult]:
    n = scaled(100_000)
    sample = min(n, scaled(2_000))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv_path = root / "subscribers.csv"
        write_sample(csv_path, n)
        fast_store = Store(f"sqlite:///{root / 'fast.db'}")
        rows, seconds = timed(lambda: digest_import(fast_store, csv_path))
        # The same file again: every row is compared and nothing is written (idempotent re-import).
        _, again_seconds = timed(lambda: digest_import(fast_store, csv_path))
        with fast_store.session() as session:
            audits = len(session.scalars(select(AuditRow.id)).all())
        fast_store.dispose()
        slow_store = Store(f"sqlite:///{root / 'slow.db'}")
        slow_rows, slow_seconds = timed(lambda: naive_import(slow_store, csv_path, sample))
        slow_store.dispose()
    ours = rows / seconds
    baseline = slow_rows / slow_seconds
    return [BenchResult(name="import_rows_per_second", value=ours, unit="rows/s", baseline=baseline,
                        ratio=ours / baseline, n=n,
                        extra={"seconds": round(seconds, 3), "reimport_seconds": round(again_seconds, 3),
                               "baseline_sample": sample,
                               "baseline_seconds": round(slow_seconds, 3), "audit_rows": audits})]
