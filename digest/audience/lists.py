"""Mailing lists: create, find, remove, and the default list created on first use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.orm import Session

from digest.audience.validate import (
    Invalid,
    check_language,
    check_list_name,
    check_send_time,
    check_timezone,
    clean_name,
    normalize_email,
    parse_topics,
)
from digest.config import Settings
from digest.errors import DigestError, NotFound
from digest.i18n.languages import effective_language as _effective_language
from digest.store.tables import AuditRow, MailingListRow, SubscriberRow, UTCDateTime


class ListError(DigestError):
    """A list option is wrong, or the list cannot be created or removed as asked."""


def _find(session: Session, name: str) -> MailingListRow | None:
    return session.scalar(select(MailingListRow).where(MailingListRow.name == name))


def get_list(session: Session, name: str) -> MailingListRow:
    row = _find(session, name)
    if row is None:
        raise NotFound(f"no list named {name!r} (see `digest lists ls`)")
    return row


def ensure_list(session: Session, settings: Settings, name: str | None = None) -> MailingListRow:
    """The named list, or the default list (``default_list``), created with the config's defaults if missing."""
    name = name or settings.default_list
    row = _find(session, name)
    if row is not None:
        return row
    if name != settings.default_list:
        raise NotFound(f"no list named {name!r} (see `digest lists ls`; only default_list is created on first use)")
    row = new_list_row(settings, name)
    session.add(row)
    session.flush()
    return row


def new_list_row(settings: Settings, name: str, **overrides: object) -> MailingListRow:
    """A new list with the config's defaults; ``overrides`` that are not None replace them. The article limits
    (``min_articles``, ``max_articles``, ``skip_thin_days``) stay null unless given: null follows the settings."""
    values: dict[str, object] = {
        "name": name, "from_email": settings.from_email, "from_name": settings.from_name,
        "reply_to": settings.reply_to or None, "topics": [], "timezone": settings.timezone,
        "send_time": settings.send_time, "double_opt_in": settings.double_opt_in,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return MailingListRow(**values)


def create_list(session: Session, settings: Settings, name: str, *, from_email: str | None = None,
                from_name: str | None = None, reply_to: str | None = None, timezone: str | None = None,
                send_time: str | None = None, topics: str | list[str] | None = None,
                double_opt_in: bool | None = None, title: str | None = None, min_articles: int | None = None,
                max_articles: int | None = None, skip_thin_days: bool | None = None,
                language: str | None = None) -> MailingListRow:
    """Create a list. Every option given is checked first and an error names it; the options not given (None or
    empty) come from the config, through ``new_list_row``, and are not checked again here: the settings check
    their own values when they load."""
    try:
        name = check_list_name(name)
        given: dict[str, Any] = {
            "from_email": _checked("--from-email", normalize_email, from_email) if from_email else None,
            "from_name": _checked("--from-name", clean_name, from_name) if from_name else None,
            "reply_to": _checked("--reply-to", normalize_email, reply_to) if reply_to else None,
            "timezone": _checked("--timezone", check_timezone, timezone) if timezone else None,
            "send_time": _checked("--send-time", check_send_time, send_time) if send_time else None,
            "topics": parse_topics(topics) if topics else None,
            "double_opt_in": double_opt_in,
            "title": title,
            "language": _checked("--language", check_language, language) if language else None,
        }
        _check_limits(settings, min_articles, max_articles)
    except Invalid as exc:
        raise ListError(str(exc)) from None
    if _find(session, name) is not None:
        raise ListError(f"a list named {name!r} already exists (see `digest lists show {name}`)")
    row = new_list_row(settings, name, **given, min_articles=min_articles, max_articles=max_articles,
                       skip_thin_days=skip_thin_days)
    session.add(row)
    session.flush()
    return row


LIMITS = ("min_articles", "max_articles", "skip_thin_days")


def set_list_limits(session: Session, settings: Settings, row: MailingListRow, *, min_articles: int | None = None,
                    max_articles: int | None = None, skip_thin_days: bool | None = None,
                    clear: bool = False) -> MailingListRow:
    """Change a list's own ``min_articles``, ``max_articles`` and ``skip_thin_days`` (None: leave as is).

    ``clear`` first makes all three follow the settings again (null), then applies the ones given. Everything is
    checked before anything changes: the limits must hold together with the list's other limit, or the
    settings' one where the list follows them."""
    base: dict[str, Any] = dict.fromkeys(LIMITS) if clear else {k: getattr(row, k) for k in LIMITS}
    try:
        _check_limits(settings, min_articles, max_articles, base)
    except Invalid as exc:
        raise ListError(str(exc)) from None
    changes = {**base, **{k: v for k, v in zip(LIMITS, (min_articles, max_articles, skip_thin_days), strict=True)
                          if v is not None}}
    for key, value in changes.items():
        setattr(row, key, value)
    session.flush()
    return row


def set_list_language(session: Session, row: MailingListRow, language: str | None) -> MailingListRow:
    """Set the list's language (a supported BCP 47 tag, refused otherwise), or None: follow theme.language."""
    try:
        row.language = _checked("--language", check_language, language) if language is not None else None
    except Invalid as exc:
        raise ListError(str(exc)) from None
    session.flush()
    return row


def archive_is_public(row: MailingListRow) -> bool:
    """Whether anyone may read the list's sent editions (``archive``, public unless set private; a row made
    before the setting has none). The archive pages and the email's web-version link both follow it."""
    return (getattr(row, "archive", None) or "public") == "public"


def effective_language(settings: Settings, row: MailingListRow) -> str:
    """The language of the list's readers who chose none: the list's own, else theme.language."""
    return _effective_language(None, row.language, (settings.theme or {}).get("language"))


def effective_limits(settings: Settings, row: MailingListRow) -> dict[str, Any]:
    """The limits the list's editions use: its own where set, else the settings'."""
    return {k: getattr(settings, k) if getattr(row, k) is None else getattr(row, k) for k in LIMITS}


def _check_limits(settings: Settings, min_articles: int | None, max_articles: int | None,
                  current: dict[str, Any] | None = None) -> None:
    """The limits given must be sane together with the other one in force: the one given with it, else the
    list's own (``current``), else the settings'. Errors name the option given."""
    if max_articles is not None and max_articles < 1:
        raise Invalid(f"--max-articles: must be at least 1, not {max_articles}")
    if min_articles is not None and min_articles < 0:
        raise Invalid(f"--min-articles: must be 0 or more, not {min_articles}")
    if min_articles is None and max_articles is None:
        return

    def in_force(key: str) -> tuple[int, str]:
        own = (current or {}).get(key)
        if own is not None:
            return int(own), "set on the list"
        return int(getattr(settings, key)), "from the settings"

    if min_articles is not None and max_articles is not None:
        if min_articles > max_articles:
            raise Invalid(f"--min-articles: {min_articles} is more than --max-articles ({max_articles})")
    elif min_articles is not None:
        upper, origin = in_force("max_articles")
        if min_articles > upper:
            raise Invalid(f"--min-articles: {min_articles} is more than max_articles ({upper}, {origin}); "
                          f"give --max-articles too")
    elif max_articles is not None:
        lower, origin = in_force("min_articles")
        if max_articles < lower:
            raise Invalid(f"--max-articles: {max_articles} is less than min_articles ({lower}, {origin}); "
                          f"give --min-articles too")


def _checked(option: str, check: Any, value: str) -> Any:
    try:
        return check(value)
    except Invalid as exc:
        raise Invalid(f"{option}: {exc}") from None


def all_lists(session: Session) -> list[MailingListRow]:
    return list(session.scalars(select(MailingListRow).order_by(MailingListRow.name)))


def subscriber_counts(session: Session, list_id: int | None = None) -> dict[int, dict[str, int]]:
    """Subscribers per list and status, in one query."""
    query = select(SubscriberRow.list_id, SubscriberRow.status, func.count()).group_by(
        SubscriberRow.list_id, SubscriberRow.status)
    if list_id is not None:
        query = query.where(SubscriberRow.list_id == list_id)
    counts: dict[int, dict[str, int]] = {}
    for lid, status, n in session.execute(query):
        counts.setdefault(lid, {})[status] = int(n)
    return counts


def remove_list(session: Session, name: str, *, force: bool = False, actor: str = "cli") -> int:
    """Delete a list and (with ``force``) its subscribers; returns how many subscribers went with it."""
    row = get_list(session, name)
    total = sum(subscriber_counts(session, row.id).get(row.id, {}).values())
    if total and not force:
        raise ListError(f"list {name!r} has {total} subscriber(s); pass --force to remove it and them")
    # Each subscriber's end is audited like `subscribers rm` (one INSERT ... SELECT, however many there are).
    t = SubscriberRow
    session.execute(insert(AuditRow).from_select(
        ["at", "list_id", "subscriber_id", "email_key", "old_status", "new_status", "actor", "reason"],
        select(literal(datetime.now(UTC), UTCDateTime()), t.list_id, t.id, t.email_key, t.status,
               literal("removed"), literal(actor), literal(f"list {name} removed"))
        .where(t.list_id == row.id)))
    # Delete explicitly rather than trust ON DELETE CASCADE: SQLite honours it only with the foreign_keys pragma.
    session.execute(delete(SubscriberRow).where(SubscriberRow.list_id == row.id)
                    .execution_options(synchronize_session=False))
    session.delete(row)
    return total


def list_to_json(row: MailingListRow, counts: dict[str, int] | None = None,
                 settings: Settings | None = None) -> dict[str, Any]:
    """A list's fields; its own ``min_articles``, ``max_articles`` and ``skip_thin_days`` are null where it follows
    the settings, and with ``settings`` the values in force are added as ``effective``."""
    data: dict[str, Any] = {
        "id": row.id, "name": row.name, "title": row.title, "from_email": row.from_email,
        "from_name": row.from_name, "reply_to": row.reply_to, "topics": list(row.topics or []),
        "timezone": row.timezone, "language": row.language, "send_time": row.send_time, "schedule": row.schedule,
        "double_opt_in": row.double_opt_in, "require_approval": row.require_approval,
        "min_articles": row.min_articles, "max_articles": row.max_articles, "skip_thin_days": row.skip_thin_days,
        "archive": row.archive or "public", "created_at": row.created_at,
    }
    if settings is not None:
        data["effective"] = {**effective_limits(settings, row), "language": effective_language(settings, row)}
    if counts is not None:
        data["subscribers"] = dict(sorted(counts.items()))
    return data
