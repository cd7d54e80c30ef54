"""Editions: a list's issue for one date, its window of articles, its frozen pool, its variants.

Shared by rank, send and schedule; the only part of ranking that touches the store (``digest.rank`` is pure).

- The **cut-off** of an edition is the list's ``send_time`` on its date in the list's time zone.
- Its **window** is [start, end): start is where the previous edition that went out (froze, and was not
  skipped or cancelled) ended, or the cut-off minus ``first_edition_lookback_hours`` when none did; end is the
  cut-off, or the moment the edition froze if that was earlier.
- **Freezing** (when the first delivery goes out) stores the ids of the window's articles in ``pool``; from then
  on every selection of the edition, including a variant first needed hours later, comes from that pool.
- Articles recorded as sent by an earlier edition of the same list (``edition_articles``) are never candidates.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.audience.lists import effective_language as list_language
from digest.audience.subscribers import receives_editions
from digest.desk.overrides import EditedRanker, load_overrides
from digest.errors import ConfigError
from digest.feedback.stats import clicks_per_topic
from digest.i18n.languages import effective_language
from digest.models import Article, Selection
from digest.rank.score import RankSettings, norm_topic
from digest.rank.select import Ranker
from digest.store.articles import list_articles
from digest.store.tables import EditionArticleRow, EditionRow, MailingListRow, SubscriberRow, VariantRow
from digest.timeutil import list_zone, resolve_local

# How far either side of the window `digest rank` looks for articles to name as "outside the window".
NEARBY = timedelta(hours=24)
# Statuses of an edition that did not go out, even if it froze: it does not end the next edition's window.
NOT_SENT_STATUSES = ("skipped", "cancelled")


def parse_send_time(list_row: MailingListRow) -> time:
    value = list_row.send_time or "07:00"
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ConfigError(f"list {list_row.name!r}: send_time must be HH:MM, not {value!r}") from None


def cutoff_for(list_row: MailingListRow, day: date) -> datetime:
    """The list's send time on ``day`` in its own zone, in UTC. A send time that clocks skip that day resolves to
    the next minute that exists, as the scheduler reads it (`digest.timeutil.resolve_local`)."""
    return resolve_local(day, parse_send_time(list_row), list_zone(list_row))


def local_today(list_row: MailingListRow, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(list_zone(list_row)).date()


# Editions past these states will not go out (again): the upcoming edition is a later one.
_DONE_STATUSES = frozenset({"sending", "sent", "cancelled", "skipped"})


def upcoming_date(session: Session, settings: Any, list_row: MailingListRow, now: datetime | None = None) -> date:
    """The next edition to go out: today's in the list's time zone, unless it went out already or its send time
    is more than ``catch_up_hours`` past (the scheduler skips it then); else the next day's. One rule for
    `digest rank`, `digest build` and the preview."""
    now = now or datetime.now(UTC)
    day = local_today(list_row, now)
    done = set(session.scalars(select(EditionRow.date).where(
        EditionRow.list_id == list_row.id, EditionRow.date >= day, EditionRow.status.in_(_DONE_STATUSES))))
    late = timedelta(hours=float(settings.catch_up_hours))
    while day in done or cutoff_for(list_row, day) + late < now:
        day += timedelta(days=1)
    return day


def window_end(edition: EditionRow) -> datetime:
    if edition.frozen_at is not None and edition.frozen_at < edition.cutoff_at:
        return edition.frozen_at
    return edition.cutoff_at


def _window_start(session: Session, settings: Any, list_row: MailingListRow, day: date,
                  cutoff: datetime) -> datetime:
    # Only an edition that went out ends a window: a draft nobody sent, or an edition skipped (a thin day) or
    # cancelled, must not swallow its articles, so the next edition that does go out covers them. What a
    # cancelled edition did deliver is excluded anyway, through edition_articles.
    previous = session.scalar(
        select(EditionRow)
        .where(EditionRow.list_id == list_row.id, EditionRow.date < day, EditionRow.frozen_at.is_not(None),
               EditionRow.status.not_in(NOT_SENT_STATUSES))
        .order_by(EditionRow.date.desc()).limit(1))
    if previous is not None:
        return min(window_end(previous), cutoff)
    return cutoff - timedelta(hours=float(settings.first_edition_lookback_hours))


def _find_edition(session: Session, list_id: int, day: date) -> EditionRow | None:
    return session.scalar(select(EditionRow).where(EditionRow.list_id == list_id, EditionRow.date == day))


def get_or_create_edition(session: Session, settings: Any, list_row: MailingListRow, day: date) -> EditionRow:
    """The list's edition for ``day``, created as a draft with its window if it does not exist yet.

    Safe when two processes ask at once: the (list, date) unique constraint lets one insert win, and the other
    re-reads the winner's row. A not yet frozen edition's window is recomputed, so a changed send time or an
    earlier edition that went out since is taken into account; a frozen one never changes.
    """
    cutoff = cutoff_for(list_row, day)
    start = _window_start(session, settings, list_row, day, cutoff)
    row = _find_edition(session, list_row.id, day)
    if row is None:
        try:
            with session.begin_nested():
                row = EditionRow(list_id=list_row.id, date=day, status="draft", window_start=start,
                                 cutoff_at=cutoff)
                session.add(row)
        except IntegrityError:
            row = _find_edition(session, list_row.id, day)
            if row is None:
                raise
    if row.frozen_at is None and (row.window_start != start or row.cutoff_at != cutoff):
        row.window_start, row.cutoff_at = start, cutoff
        session.flush()
    return row


def sent_by_other_editions(session: Session, edition: EditionRow) -> set[str]:
    """Article ids this list delivered in any other edition: never candidates again."""
    return set(session.scalars(
        select(EditionArticleRow.article_id)
        .where(EditionArticleRow.list_id == edition.list_id, EditionArticleRow.edition_id != edition.id)))


@dataclass(frozen=True)
class StoryMemory:
    """What a list's recent editions told: ``told`` the articles they delivered, ``context`` the rest of their
    frozen pools (among them the other outlets' versions of a told story, left out then as its duplicates)."""

    told: list[Article]
    context: list[Article]


def remembered_stories(session: Session, edition: EditionRow, days: int) -> StoryMemory:
    """The stories a reader of this edition has already been told: what the list delivered in its editions of
    the ``days`` dates before this one. Only earlier dates count, so a later edition going out first (an
    eastern time zone is already on tomorrow) does not change this one."""
    if days <= 0:
        return StoryMemory([], [])
    recent = session.scalars(select(EditionRow).where(
        EditionRow.list_id == edition.list_id, EditionRow.id != edition.id,
        EditionRow.date >= edition.date - timedelta(days=days), EditionRow.date < edition.date)).all()
    if not recent:
        return StoryMemory([], [])
    told_ids = set(session.scalars(select(EditionArticleRow.article_id).where(
        EditionArticleRow.edition_id.in_([e.id for e in recent]))))
    if not told_ids:
        return StoryMemory([], [])
    pooled = {str(article_id) for e in recent for article_id in (e.pool or [])} - told_ids
    told = list_articles(session, ids=sorted(told_ids))
    context = list_articles(session, ids=sorted(pooled)) if pooled else []
    return StoryMemory(told, context)


def candidate_pool(session: Session, edition: EditionRow) -> list[Article]:
    """The edition's candidates: its frozen pool once frozen, else the window's articles; never retracted ones,
    never ones the list sent in another edition. Newest first, then by id."""
    return _unsent_candidates(session, edition, sent_by_other_editions(session, edition))


def _unsent_candidates(session: Session, edition: EditionRow, sent: Collection[str]) -> list[Article]:
    # ``candidate_pool`` with the sent ids passed in: ``ranker_for`` needs them too, and queries them once.
    if edition.frozen_at is not None:
        ids = list(edition.pool or [])
        articles = list_articles(session, ids=ids) if ids else []
    else:
        articles = list_articles(session, since=edition.window_start, until=edition.cutoff_at)
    return [a for a in articles if a.id not in sent]


def freeze(session: Session, edition: EditionRow, now: datetime) -> EditionRow:
    """Fix the edition's pool to the articles it has at ``now`` (idempotent: a frozen edition stays as it is)."""
    if edition.frozen_at is not None:
        return edition
    # Two senders freezing at once: the row lock (PostgreSQL; SQLite's writer lock already serializes) makes the
    # second one see the first one's pool instead of writing its own.
    session.flush()
    session.refresh(edition, with_for_update=True)
    if edition.frozen_at is not None:
        return edition
    end = min(now, edition.cutoff_at)
    sent = sent_by_other_editions(session, edition)
    articles = list_articles(session, since=edition.window_start, until=end) if end > edition.window_start else []
    edition.pool = sorted(a.id for a in articles if a.id not in sent)
    edition.frozen_at = now
    session.flush()
    return edition


def rank_settings_for(settings: Any, list_row: MailingListRow) -> RankSettings:
    """The ranking settings with the list's own min/max/skip-thin overrides applied."""
    overrides = {name: getattr(list_row, name) for name in ("min_articles", "max_articles", "skip_thin_days")
                 if getattr(list_row, name) is not None}
    try:
        return RankSettings.from_settings(settings.replace(**overrides) if overrides else settings)
    except ConfigError as exc:
        if overrides:
            raise ConfigError(f"list {list_row.name!r}: {exc}") from None
        raise


def engagement_for(session: Session, settings: Any, edition: EditionRow) -> Mapping[str, float] | None:
    """Clicks per topic (0..1) from the feedback part, only when ``weight_engagement`` uses them."""
    if not settings.weight_engagement:
        return None
    return clicks_per_topic(session, edition.list_id) or None


def ranker_for(session: Session, settings: Any, edition: EditionRow) -> EditedRanker:
    """A ``Ranker`` over the edition's candidates plus the articles just around its window, so a selection can
    say which were left out as outside the window or already sent. Freshness is measured from the end of the
    window, never the clock, so every variant of an edition scores alike whenever it is selected. The editor's
    overrides of the edition (``digest.desk``) apply to every selection it makes."""
    list_row = session.get(MailingListRow, edition.list_id)
    assert list_row is not None
    end = window_end(edition)
    margin = max(timedelta(0), min(end - edition.window_start, NEARBY))
    nearby = list_articles(session, since=edition.window_start - margin, until=end + margin)
    candidates = {a.id: a for a in nearby}
    sent = sent_by_other_editions(session, edition)
    for article in _unsent_candidates(session, edition, sent):
        candidates.setdefault(article.id, article)
    pool = list(edition.pool or []) if edition.frozen_at is not None else None
    rank_settings = rank_settings_for(settings, list_row)
    memory = remembered_stories(session, edition, rank_settings.story_memory_days)
    overrides = load_overrides(session, edition.id)
    ranker = Ranker(overrides.keep(candidates.values()), settings=rank_settings, now=end,
                    window=(edition.window_start, end), pool=pool, already_sent=sent & candidates.keys(),
                    remembered=memory.told, remembered_context=memory.context, pinned=overrides.ranked_first)
    return EditedRanker(ranker, overrides)


def stamp(selection: Selection, list_row: MailingListRow, edition: EditionRow,
          language: str | None = None) -> Selection:
    """Label a fresh selection with its list, edition and (when the caller knows it) readers' language."""
    selection.list_name = list_row.name
    selection.language = language
    selection.edition_date = edition.date
    selection.window_start = edition.window_start
    selection.cutoff_at = window_end(edition)
    selection.note = edition.editor_note
    return selection


def select_for(session: Session, settings: Any, edition: EditionRow, topics: Iterable[str] | None, *,
               limit: int | None = None, language: str | None = None) -> Selection:
    """The edition's selection for a reader with ``topics`` preferences; None or empty means the list's topics,
    exactly what a subscriber who chose none gets (``effective_preferences``, which is idempotent, so passing
    effective preferences already is harmless). ``language``: the reader's (None: the list's)."""
    list_row = session.get(MailingListRow, edition.list_id)
    assert list_row is not None
    # Applied here rather than by each caller: an editor's preview, the approval build and the thin-day check
    # must judge the selection a reader actually gets, not an unpersonalized one nobody is sent.
    preferences = effective_preferences(topics, list_row.topics)
    ranker = ranker_for(session, settings, edition)
    clicks = engagement_for(session, settings, edition)
    return stamp(ranker.select(preferences, limit=limit, engagement=clicks), list_row, edition,
                 language or list_language(settings, list_row))


def get_or_create_variant(session: Session, edition: EditionRow, selection: Selection) -> VariantRow:
    """The edition's variant for this selection (keyed by ``selection.key``), created once even under races."""
    key = selection.key

    def find() -> VariantRow | None:
        return session.scalar(select(VariantRow).where(VariantRow.edition_id == edition.id, VariantRow.key == key))

    row = find()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = VariantRow(edition_id=edition.id, key=key, article_ids=selection.article_ids,
                             language=selection.language)
            session.add(row)
    except IntegrityError:
        row = find()
        if row is None:
            raise
    return row


def record_sent_articles(session: Session, edition: EditionRow, article_ids: Iterable[str]) -> None:
    """Remember what the edition delivered, so no later edition of the list offers it again (idempotent)."""
    ids = sorted(set(article_ids))
    if not ids:
        return
    rows = [{"edition_id": edition.id, "article_id": i, "list_id": edition.list_id} for i in ids]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(EditionArticleRow).values(rows).on_conflict_do_nothing())
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(EditionArticleRow).values(rows).on_conflict_do_nothing())
    else:  # pragma: no cover - the store supports only the two above
        raise ConfigError(f"database_url: unsupported database {dialect!r}")


def effective_preferences(subscriber_topics: Iterable[str] | None, list_topics: Iterable[str] | None
                          ) -> tuple[str, ...]:
    """A subscriber's own topics, else the list's topics, else none: normalized, so equal profiles match."""
    own = sorted({norm_topic(str(t)) for t in subscriber_topics or [] if str(t).strip()})
    if own:
        return tuple(own)
    return tuple(sorted({norm_topic(str(t)) for t in list_topics or [] if str(t).strip()}))


@dataclass
class VariantGroup:
    """One distinct selection of an edition in one language and the subscribers (and preference profiles) that
    get it."""

    selection: Selection  # its ``language`` is the group's
    profiles: list[tuple[str, ...]] = field(default_factory=list)
    subscriber_ids: list[int] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.selection.key


def variants_for_list(session: Session, settings: Any, edition: EditionRow) -> list[VariantGroup]:
    """Group the list's active, unpaused subscribers by the selection their preferences give and their language.

    Each distinct preference profile is ranked once; readers of one language whose selections come out
    identical share one group (one variant, rendered once). Largest group first, then by key.
    """
    list_row = session.get(MailingListRow, edition.list_id)
    assert list_row is not None
    subscribers = session.execute(
        select(SubscriberRow.id, SubscriberRow.topics, SubscriberRow.language)
        .where(SubscriberRow.list_id == list_row.id, receives_editions())
        .order_by(SubscriberRow.id)).all()
    default = list_language(settings, list_row)
    profiles: dict[tuple[str, ...], dict[str, list[int]]] = {}
    for subscriber_id, topics, language in subscribers:
        languages = profiles.setdefault(effective_preferences(topics, list_row.topics), {})
        languages.setdefault(effective_language(language, default), []).append(subscriber_id)
    if not profiles:
        return []
    ranker = ranker_for(session, settings, edition)
    clicks = engagement_for(session, settings, edition)
    groups: dict[str, VariantGroup] = {}
    for profile in sorted(profiles):
        for language, ids in sorted(profiles[profile].items()):
            selection = stamp(ranker.select(profile, engagement=clicks, with_dropped=False), list_row, edition,
                              language)
            group = groups.setdefault(selection.key, VariantGroup(selection))
            group.profiles.append(profile)
            group.subscriber_ids.extend(ids)
    for group in groups.values():
        group.subscriber_ids.sort()
    return sorted(groups.values(), key=lambda g: (-len(g.subscriber_ids), g.key))
