"""An edition's variants: which distinct selections its readers get, and the stored row of each.

``variants_for_list`` groups the list's readers by the selection their preferences and language give (what
`digest rank --variants` shows); ``get_or_create_variant`` stores one selection as the edition's variant
(what the send planner does for every group it meets).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.audience.lists import effective_language as list_language
from digest.audience.subscribers import receives_editions
from digest.config import Settings
from digest.editions.selection import effective_preferences, engagement_for, ranker_for, stamp
from digest.i18n.languages import effective_language
from digest.models import Selection
from digest.store.tables import EditionRow, MailingListRow, SubscriberRow, VariantRow


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


def variants_for_list(session: Session, settings: Settings, edition: EditionRow) -> list[VariantGroup]:
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
