"""SQLAlchemy tables of the store.

Changing anything here means regenerating the migration: ``make migration`` (see the README). A test runs
Alembic's autogenerate comparison and fails when this file and the migrations disagree.

Exactly-once sending rests on three constraints declared here: one edition per (list, date), one delivery per
(edition, subscriber), and one event per provider event id.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware in Python, UTC in the database, on SQLite (which has no zones) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; digest stores only timezone-aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite hands a deleted row's id to the next row unless told otherwise. A reused subscriber or list id would
# make an old delivery row, token or event look like the new row's, so every table with integer ids refuses reuse.
_NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


class ArticleRow(Base):
    __tablename__ = "articles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    outlet: Mapped[str | None] = mapped_column(String(200))
    author: Mapped[str | None] = mapped_column(String(300))
    dateline: Mapped[str | None] = mapped_column(String(200))
    edition: Mapped[str | None] = mapped_column(String(200))
    published_at: Mapped[datetime] = mapped_column(index=True)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    url: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    topics: Mapped[list[Any]] = mapped_column(default=list)
    summary: Mapped[str | None] = mapped_column(Text)
    quick_looks: Mapped[list[Any]] = mapped_column(default=list)
    quick_looks_title: Mapped[str | None] = mapped_column(Text)
    quick_looks_derived: Mapped[bool] = mapped_column(Boolean, default=False)
    deep_look_title: Mapped[str | None] = mapped_column(Text)
    sections: Mapped[list[Any]] = mapped_column(default=list)
    image_url: Mapped[str | None] = mapped_column(Text)
    image_alt: Mapped[str | None] = mapped_column(Text)
    image_width: Mapped[int | None] = mapped_column(Integer)
    image_height: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    retracted_at: Mapped[datetime | None] = mapped_column()


class MailingListRow(Base):
    __tablename__ = "lists"
    __table_args__ = _NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str | None] = mapped_column(String(300))
    from_email: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str] = mapped_column(String(300))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    topics: Mapped[list[Any]] = mapped_column(default=list)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # A BCP 47 tag (digest.i18n.languages), or null for theme.language.
    language: Mapped[str | None] = mapped_column(String(35))
    send_time: Mapped[str] = mapped_column(String(5), default="07:00")
    # A cron expression, or null for "daily at send_time".
    schedule: Mapped[str | None] = mapped_column(String(120))
    require_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    double_opt_in: Mapped[bool] = mapped_column(Boolean, default=True)
    min_articles: Mapped[int | None] = mapped_column(Integer)
    max_articles: Mapped[int | None] = mapped_column(Integer)
    skip_thin_days: Mapped[bool | None] = mapped_column(Boolean)
    # "public": sent editions are on /archive/<list> and its feed; "private": those pages answer 404.
    archive: Mapped[str] = mapped_column(String(10), default="public")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SubscriberRow(Base):
    __tablename__ = "subscribers"
    __table_args__ = (
        UniqueConstraint("list_id", "email_key", name="uq_subscriber_list_email"),
        Index("ix_subscribers_list_status", "list_id", "status"),
        _NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    # Lower-cased normalized address: what uniqueness and suppression compare.
    email_key: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    topics: Mapped[list[Any]] = mapped_column(default=list)
    timezone: Mapped[str | None] = mapped_column(String(64))
    # The reader's own language, over the list's (null: the list's).
    language: Mapped[str | None] = mapped_column(String(35))
    send_time: Mapped[str | None] = mapped_column(String(5))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column()
    unsubscribed_at: Mapped[datetime | None] = mapped_column()
    # When the subscriber last became active: newcomers get no backlog from the scheduler.
    active_since: Mapped[datetime | None] = mapped_column()
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0)


class AuditRow(Base):
    """Every status change of a subscriber: who or what changed it, when, and why."""

    __tablename__ = "audit_log"
    __table_args__ = _NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    list_id: Mapped[int | None] = mapped_column(Integer, index=True)
    subscriber_id: Mapped[int | None] = mapped_column(Integer, index=True)
    email_key: Mapped[str | None] = mapped_column(String(320))
    old_status: Mapped[str | None] = mapped_column(String(20))
    new_status: Mapped[str | None] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)


class SuppressionRow(Base):
    """Addresses never to be sent to or imported again, on any list. Stored hashed so `forget` keeps no address."""

    __tablename__ = "suppressions"
    __table_args__ = _NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EditionRow(Base):
    __tablename__ = "editions"
    __table_args__ = (UniqueConstraint("list_id", "date", name="uq_edition_list_date"), _NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    window_start: Mapped[datetime] = mapped_column()
    cutoff_at: Mapped[datetime] = mapped_column()
    # Set when the first delivery goes out; from then on `pool` is the only source of articles.
    frozen_at: Mapped[datetime | None] = mapped_column()
    pool: Mapped[list[Any] | None] = mapped_column(JSON)
    approved_at: Mapped[datetime | None] = mapped_column()
    approved_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    # The editor's note (Markdown subset) that opens the email; ``note`` above is the send part's status note.
    editor_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VariantRow(Base):
    """A distinct ordered selection of an edition's articles, rendered once and shared by its subscribers."""

    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("edition_id", "key", name="uq_variant_edition_key"), _NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    article_ids: Mapped[list[Any]] = mapped_column()
    # The readers' language (part of ``key``): what personalizing and the message headers need at send time.
    language: Mapped[str | None] = mapped_column(String(35))
    subject: Mapped[str | None] = mapped_column(Text)
    preheader: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    render_hash: Mapped[str | None] = mapped_column(String(64))
    rendered_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SubjectTestRow(Base):
    """A subject test of one edition: the sample split among the subjects, the rest held until the winner."""

    __tablename__ = "subject_tests"
    __table_args__ = (UniqueConstraint("edition_id", name="uq_subject_test_edition"), _NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    subjects: Mapped[list[Any]] = mapped_column()
    sample_percent: Mapped[int] = mapped_column(Integer)
    decide_after_seconds: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(10))  # "clicks" or "opens"
    # "<base variant id>:<subject index>" → the variant carrying that subject (same content, that subject).
    variants: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sample_size: Mapped[int | None] = mapped_column(Integer)
    drawn_at: Mapped[datetime | None] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column()
    winner: Mapped[int | None] = mapped_column(Integer)
    results: Mapped[list[Any] | None] = mapped_column(JSON)  # per subject, what the decision saw
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EditionArticleRow(Base):
    """Articles an edition actually delivered: what makes them never candidates for that list again."""

    __tablename__ = "edition_articles"

    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True)
    article_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    list_id: Mapped[int] = mapped_column(Integer, index=True)


class DeliveryRow(Base):
    """The outbox: one row per (edition, subscriber), written before any provider call."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("edition_id", "subscriber_id", name="uq_delivery_edition_subscriber"),
        Index("ix_deliveries_edition_status", "edition_id", "status"),
        # What a worker reads of its send batch: the pending rows of one variant in id order, straight from the
        # index; a batch whose rows all went out answers from the index alone, not by reading its thousand rows.
        Index("ix_deliveries_work_batch_status", "work_batch", "status", "variant_id"),
        _NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(Integer, index=True)
    variant_id: Mapped[int | None] = mapped_column(Integer)
    email: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    batch_id: Mapped[str | None] = mapped_column(String(100), index=True)
    # The send batch (`send_batches`) a worker claims this row with; null for rows never to be sent (skipped).
    work_batch: Mapped[int | None] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()


class SendBatchRow(Base):
    """A slice of an edition's deliveries (one provider request's worth) that one worker at a time claims, sends
    and records: ``open`` → ``claimed`` (by ``holder``, a worker's lease holder) → ``done``. Workers claim with
    ``SELECT … FOR UPDATE SKIP LOCKED``, so any number of them share an edition without a broker."""

    __tablename__ = "send_batches"
    __table_args__ = (Index("ix_send_batches_edition_status", "edition_id", "status"), _NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="open")
    holder: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SendPaceRow(Base):
    """A provider's limits as every worker sees them: until when a 429 paused sending (its X-RateLimit-Reset) and
    the next free moment under ``send_rate``, both Unix times on the real clock."""

    __tablename__ = "send_pace"

    backend: Mapped[str] = mapped_column(String(40), primary_key=True)
    paused_until: Mapped[float] = mapped_column(Float, default=0.0)
    next_slot: Mapped[float] = mapped_column(Float, default=0.0)


class EventRow(Base):
    """A normalized provider event (delivered, bounced, opened, clicked, ...), stored once per provider event id."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("provider", "provider_event_id", name="uq_event_provider_id"), _NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(40))
    provider_event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40), index=True)
    email_key: Mapped[str | None] = mapped_column(String(320))
    edition_id: Mapped[int | None] = mapped_column(Integer, index=True)
    subscriber_id: Mapped[int | None] = mapped_column(Integer, index=True)
    article_id: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class EditionTotalsRow(Base):
    """Per-edition counts kept when `digest db prune` removes the rows they were counted from."""

    __tablename__ = "edition_totals"

    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LeaseRow(Base):
    """A named lock with an expiry, so two schedulers (or two sends) never work the same thing at once."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column()


class ThrottleRow(Base):
    """Hits per (scope, key) in a time bucket, for the public form's rate limits across processes."""

    __tablename__ = "throttle"

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(40), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)


class ScheduleRunRow(Base):
    """What the scheduler decided for a list's scheduled day (sent, skipped, waiting for approval)."""

    __tablename__ = "schedule_runs"
    __table_args__ = (UniqueConstraint("list_id", "date", name="uq_schedule_run_list_date"), _NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)



class EditionOverrideRow(Base):
    """An editor's decision about one article in one edition (the desk): pinned, left out (why), added by hand,
    or placed at ``position`` in the editor's order. Only this edition sees it; every change is audit-logged."""

    __tablename__ = "edition_overrides"
    __table_args__ = (UniqueConstraint("edition_id", "article_id", name="uq_edition_override_article"),
                      _NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"), index=True)
    article_id: Mapped[str] = mapped_column(String(64))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    left_out: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    added: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int | None] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
