"""Suppression lists from elsewhere: a CSV another provider exported (bounces, spam complaints, unsubscribes),
read with the subscriber import's formats and checks, and applied all at once or not at all.

Each row is an address and, when the file has a reason column (``reason``, ``type``, ``suppression_type``,
``category``, ``event``), why it is suppressed: ``bounce``, ``complaint`` or ``unsubscribe`` in the words
providers use (``hard_bounce``, ``spamreport``, ``unsubscribed``…), or an SMTP refusal (``550 5.1.1 …``, as a
bounce export carries it). A row without one takes the command's ``--reason``. An unknown reason is a rejected
row, like an invalid address: guessing would put a complaint down as an unsubscribe.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from digest.audience.csv import read_table
from digest.audience.importer import Issue
from digest.audience.lifecycle import suppress_and_mark
from digest.audience.validate import Invalid, normalize_email

REASON_COLUMNS = ("reason", "type", "suppression_type", "suppression type", "category", "event")
_REASONS = {
    "bounce": "bounce", "bounced": "bounce", "bounces": "bounce", "hard_bounce": "bounce", "hard": "bounce",
    "hardbounce": "bounce", "invalid": "bounce", "invalid_email": "bounce", "cleaned": "bounce",
    "complaint": "complaint", "complaints": "complaint", "complained": "complaint", "spam": "complaint",
    "spamreport": "complaint", "spam_report": "complaint", "spam_reports": "complaint", "abuse": "complaint",
    "unsubscribe": "unsubscribe", "unsubscribed": "unsubscribe", "unsubscribes": "unsubscribe",
    "unsub": "unsubscribe", "optout": "unsubscribe", "opt_out": "unsubscribe", "opted_out": "unsubscribe",
    "global_unsubscribe": "unsubscribe", "group_unsubscribe": "unsubscribe", "manual": "unsubscribe",
}
_SMTP_REFUSAL = re.compile(r"^\s*5\d\d\b|^\s*5\.\d{1,3}\.\d{1,3}\b")


def reason_of(value: str) -> str:
    """``bounce``, ``complaint`` or ``unsubscribe`` for a provider's word; Invalid for anything else."""
    key = re.sub(r"[\s-]+", "_", value.strip().lower())
    if key in _REASONS:
        return _REASONS[key]
    if _SMTP_REFUSAL.match(value):
        return "bounce"
    raise Invalid(f"reason: unknown reason {value.strip()!r} (use bounce, complaint or unsubscribe)")


@dataclass
class Suppression:
    line: int | None
    email: str
    reason: str
    detail: str


@dataclass
class SuppressionReport:
    source: str
    dry_run: bool = False
    rows: int = 0
    records: list[Suppression] = field(default_factory=list)
    rejected: list[Issue] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.source, "dry_run": self.dry_run, "rows": self.rows,
                "newly_suppressed": sum(1 for r in self.results if r["newly_suppressed"]),
                "subscribers_changed": sum(int(r["subscribers_changed"]) for r in self.results),
                "rejected": len(self.rejected), "rejections": [i.to_json() for i in self.rejected],
                "addresses": self.results}


def read_suppressions(path: str | Path, *, default_reason: str) -> SuppressionReport:
    """Every row checked; rejected rows are reported with their line and field, never half-applied."""
    path = Path(path)
    columns, rows = read_table(path)
    report = SuppressionReport(source=path.name)
    reason_column = next((c for c in REASON_COLUMNS if c in columns), None)
    email_at = columns.index("email")
    reason_at = columns.index(reason_column) if reason_column else None
    seen: dict[str, int] = {}
    for line, cells in rows:
        report.rows += 1
        raw_email = cells[email_at].strip() if email_at < len(cells) else ""
        try:
            if len(cells) > len(columns):
                raise Invalid(f"{len(cells)} fields but the header has {len(columns)} (an unquoted separator "
                              "inside a value?)")
            try:
                email = normalize_email(raw_email)
            except Invalid as exc:
                raise Invalid(f"email: {exc}") from None
            raw_reason = cells[reason_at].strip() if reason_at is not None and reason_at < len(cells) else ""
            reason = reason_of(raw_reason or default_reason)
        except Invalid as exc:
            report.rejected.append(Issue(line, raw_email or None, str(exc)))
            continue
        key = email.lower()
        if key in seen:
            continue  # the same address twice (a bounce and a complaint): the first row's reason stands
        seen[key] = line
        detail = f"imported from {path.name} line {line}" + (f": {raw_reason[:500]}" if raw_reason else "")
        report.records.append(Suppression(line, email, reason, detail))
    return report


def apply(session: Session, records: Iterable[Suppression], *, actor: str) -> list[dict[str, Any]]:
    """Suppress each address on every list and move its subscribers, in the caller's transaction."""
    results = []
    for record in records:
        added, changed = suppress_and_mark(session, record.email, record.reason, actor=actor, detail=record.detail)
        results.append({"line": record.line, "email": record.email, "reason": record.reason,
                        "newly_suppressed": added, "subscribers_changed": changed})
    return results
