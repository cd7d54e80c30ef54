"""Ranking an edition for one reader: the list's ranking settings, the ranker over the edition's candidates
(with the desk's overrides), and the selection labelled with its list and edition.

The only part of ranking that touches the store (``digest.rank`` is pure): it gathers from the store what the
pure ``Ranker`` needs (candidates and the articles just around the window, what was sent, the stories recently
told, clicks per topic) and hands it over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta

from sqlalchemy.orm import Session

from digest.audience.lists import effective_language as list_language
from digest.config import Settings
from digest.desk.overrides import EditedRanker, load_overrides
from digest.editions.history import remembered_stories, sent_by_other_editions
from digest.editions.lifecycle import candidate_pool
from digest.editions.window import window_end
from digest.errors import ConfigError
from digest.feedback.stats import clicks_per_topic
from digest.models import Selection
from digest.rank.score import RankSettings, norm_topic
from digest.rank.select import Ranker
from digest.store.articles import list_articles
from digest.store.tables import EditionRow, MailingListRow

# How far either side of the window `digest rank` looks for articles to name as "outside the window".
NEARBY = timedelta(hours=24)


def effective_preferences(subscriber_topics: Iterable[str] | None, list_topics: Iterable[str] | None
                          ) -> tuple[str, ...]:
    """A subscriber's own topics, else the list's topics, else none: normalized, so equal profiles match."""
    own = sorted({norm_topic(str(t)) for t in subscriber_topics or [] if str(t).strip()})
    if own:
        return tuple(own)
    return tuple(sorted({norm_topic(str(t)) for t in list_topics or [] if str(t).strip()}))


def rank_settings_for(settings: Settings, list_row: MailingListRow) -> RankSettings:
    """The ranking settings with the list's own min/max/skip-thin overrides applied."""
    overrides = {name: getattr(list_row, name) for name in ("min_articles", "max_articles", "skip_thin_days")
                 if getattr(list_row, name) is not None}
    try:
        return RankSettings.from_settings(settings.replace(**overrides) if overrides else settings)
    except ConfigError as exc:
        if overrides:
            raise ConfigError(f"list {list_row.name!r}: {exc}") from None
        raise


def engagement_for(session: Session, settings: Settings, edition: EditionRow) -> Mapping[str, float] | None:
    """Clicks per topic (0..1) from the feedback part, only when ``weight_engagement`` uses them."""
    if not settings.weight_engagement:
        return None
    return clicks_per_topic(session, edition.list_id) or None


def ranker_for(session: Session, settings: Settings, edition: EditionRow) -> EditedRanker:
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
    for article in candidate_pool(session, edition, sent=sent):
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


def select_for(session: Session, settings: Settings, edition: EditionRow, topics: Iterable[str] | None, *,
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
