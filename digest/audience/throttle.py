"""Counting hits per (scope, key) in fixed time buckets, in the store, so limits hold across processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digest.store.tables import ThrottleRow

HOURLY = "%Y-%m-%dT%H"
DAILY = "%Y-%m-%d"


def hit(session: Session, scope: str, key: str, *, fmt: str = HOURLY, now: datetime | None = None) -> int:
    """Count one hit and return the bucket's total so far (this hit included); one atomic upsert."""
    now = now or datetime.now(UTC)
    bucket = now.astimezone(UTC).strftime(fmt)
    dialect = session.get_bind().dialect.name
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, ThrottleRow.__table__)
    stmt = insert_(table).values(scope=scope, key=key[:320], bucket=bucket, hits=1)
    upsert = stmt.on_conflict_do_update(index_elements=["scope", "key", "bucket"],
                                        set_={"hits": table.c.hits + 1}).returning(table.c.hits)
    hits = int(session.execute(upsert).scalar_one())
    if hits == 1:
        _forget_old(session, scope, fmt, now)
    return hits


def _forget_old(session: Session, scope: str, fmt: str, now: datetime) -> None:
    """Buckets sort as strings; anything older than two periods will never be read again."""
    period = timedelta(days=1) if fmt == DAILY else timedelta(hours=1)
    oldest = (now - 2 * period).astimezone(UTC).strftime(fmt)
    session.execute(delete(ThrottleRow).where(ThrottleRow.scope == scope, ThrottleRow.bucket < oldest))
