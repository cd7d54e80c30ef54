"""What a send reports: counts per run (`Tally`), an edition's `SendSummary`, a worker's `WorkerSummary`, and the
progress hooks the delivering calls."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Protocol


@dataclass
class InDoubt:
    delivery_id: int
    email: str
    batch_id: str | None
    resolution: str  # "kept (assume_sent)", "resent (in_doubt_rule=resend)", "cancelled and resent"


@dataclass
class Tally:
    """What one process did: the counters every part of the send adds to."""

    sent: int = 0  # by this run
    failed: int = 0
    bounced: int = 0  # of failed: addresses the server refused for good (recorded as hard bounces)
    skipped: int = 0
    requests: int = 0  # provider calls made by this run
    retries: int = 0
    rate_limited: int = 0
    requeued: int = 0  # in-doubt rows recovered by cancelling a scheduled request
    marked_in_doubt: int = 0  # rows this run left in doubt (a lost answer, or a dead worker's request)
    batches: int = 0  # send batches this run delivered
    in_doubt_found: list[InDoubt] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in ("sent", "failed", "bounced", "skipped", "requests", "retries", "rate_limited", "requeued",
                     "marked_in_doubt", "batches"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.in_doubt_found += other.in_doubt_found
        self.errors += other.errors


@dataclass
class SendSummary(Tally):
    edition_id: int | None = None
    list_name: str = ""
    date: date | None = None
    backend: str = ""
    dry_run: bool = False
    sandbox: bool = False
    status: str = ""  # the edition's status afterwards
    variants: int = 0
    recipients: int = 0  # delivery rows of the edition (dry run: that would be written)
    in_doubt: int = 0  # rows of the edition in doubt now
    pending: int = 0  # left for a later run
    cancelled: int = 0
    retried_failed: int = 0  # failed rows put back to pending by --retry-failed
    workers: int = 1  # processes that delivered (digest send --workers N)
    stopped: bool = False
    totals: dict[str, int] = field(default_factory=dict)
    subjects: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WorkerSummary(Tally):
    """What one `digest worker` did, over every edition it joined."""

    holder: str = ""
    editions: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["in_doubt"] = data.pop("marked_in_doubt")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerSummary:
        data = dict(data)
        data["marked_in_doubt"] = data.pop("in_doubt", 0)
        data["in_doubt_found"] = [InDoubt(**d) for d in data.get("in_doubt_found", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, *, sent: int = 0, failed: int = 0, skipped: int = 0, in_doubt: int = 0) -> None: ...
    def finish(self) -> None: ...


class NoProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, *, sent: int = 0, failed: int = 0, skipped: int = 0, in_doubt: int = 0) -> None:
        pass

    def finish(self) -> None:
        pass
