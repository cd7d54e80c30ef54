"""An edition's editorial overrides as the ranking sees them, applied around a ``Ranker`` without changing it.

- **Left out** articles are taken out of the candidates before ranking (so the next story fills their place)
  and listed as dropped with the editor's reason.
- **Pinned** and **added** articles are passed to the Ranker as pinned, so they make the edition whatever the
  limit and the topic cap say; afterwards a pinned one stays first (first among equals) while an added one goes
  back to the place its score gives it.
- **The editor's order** (``position``) then rearranges the articles it names among the places they hold, so
  the articles it does not name (a later arrival, another reader's topics) keep theirs.
- **Room for added articles**: the Ranker is asked for one more article per added one, and once everything is in
  place the last articles neither pinned nor added make room ("below the limit"), so the story that drops out
  is the one at the bottom of what the editor sees, not one the editor just moved up.

Every selection of the edition goes through ``EditedRanker``: `digest rank`, `build`, `send`, the scheduler and
the preview all see the same edition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.models import Article, Dropped, RankedItem, Selection
from digest.rank.select import BELOW_LIMIT, Ranker
from digest.store.tables import EditionOverrideRow

LEFT_OUT = "left out by the editor"


def left_out_reason(reason: str | None) -> str:
    """The ``Dropped`` reason of an article the editor left out, with their reason when they gave one."""
    return f"{LEFT_OUT}: {reason}" if reason else LEFT_OUT


@dataclass(frozen=True)
class Overrides:
    pinned: frozenset[str] = frozenset()
    added: frozenset[str] = frozenset()
    left_out: Mapping[str, str | None] = field(default_factory=dict)
    order: tuple[str, ...] = ()  # article ids in the editor's order

    @property
    def empty(self) -> bool:
        return not (self.pinned or self.added or self.left_out or self.order)

    @property
    def ranked_first(self) -> frozenset[str]:
        """What the Ranker must treat as pinned: whatever the editor put in the edition."""
        return self.pinned | self.added

    def keep(self, candidates: Iterable[Article]) -> list[Article]:
        return [a for a in candidates if a.id not in self.left_out]

    def arrange(self, selection: Selection, *, limit: int | None = None, with_dropped: bool = True) -> Selection:
        """``selection`` with the overrides applied, cut to ``limit`` articles (pinned and added ones stay)."""
        if self.empty:
            return selection
        items = self._merge_added(selection.items)
        items = self._editor_order(items)
        dropped = list(selection.dropped)
        if limit is not None and len(items) > limit:
            items, cut = self._make_room(items, limit)
            if with_dropped:
                dropped += [Dropped(item.article.id, BELOW_LIMIT) for item in cut]
        if with_dropped:
            dropped += [Dropped(article_id, left_out_reason(self.left_out[article_id]))
                        for article_id in sorted(self.left_out)]
        return replace(selection, items=items, dropped=dropped)

    def _merge_added(self, items: list[RankedItem]) -> list[RankedItem]:
        # The Ranker put added articles among the pinned ones, at the top; they go back where their score puts
        # them among the ranked articles (ties: the ranked article first).
        added = [self._unpin(i) for i in items if i.article.id in self.added and not self._is_pinned(i)]
        if not added:
            return items
        first = [i for i in items if self._is_pinned(i)]
        ranked = [i for i in items if not self._is_pinned(i) and i.article.id not in self.added]
        merged: list[RankedItem] = []
        for item in ranked:
            while added and added[0].score > item.score:
                merged.append(added.pop(0))
            merged.append(item)
        return first + merged + added

    def _make_room(self, items: list[RankedItem], limit: int) -> tuple[list[RankedItem], list[RankedItem]]:
        kept = list(items)
        cut: list[RankedItem] = []
        for item in reversed(items):
            if len(kept) <= limit:
                break
            if not self._is_pinned(item) and item.article.id not in self.added:
                kept.remove(item)
                cut.insert(0, item)
        return kept, cut

    def _is_pinned(self, item: RankedItem) -> bool:
        return item.article.pinned or item.article.id in self.pinned

    @staticmethod
    def _unpin(item: RankedItem) -> RankedItem:
        components = {k: v for k, v in item.components.items() if k != "pinned"}
        components["added"] = 1.0
        return replace(item, components=components)

    def _editor_order(self, items: list[RankedItem]) -> list[RankedItem]:
        position = {article_id: k for k, article_id in enumerate(self.order)}
        slots = [k for k, item in enumerate(items) if item.article.id in position]
        if len(slots) < 2:
            return items
        ordered = sorted((items[k] for k in slots), key=lambda item: position[item.article.id])
        out = list(items)
        for slot, item in zip(slots, ordered):
            out[slot] = item
        return out


class EditedRanker:
    """A ``Ranker`` whose every selection carries the edition's overrides."""

    def __init__(self, ranker: Ranker, overrides: Overrides) -> None:
        self.ranker = ranker
        self.overrides = overrides

    def select(self, preferences: Iterable[str] | None = None, *, limit: int | None = None,
               engagement: Mapping[str, float] | None = None, with_dropped: bool = True) -> Selection:
        wanted = self.ranker.rs.max_articles if limit is None else limit
        room = wanted + len(self.overrides.added)
        selection = self.ranker.select(preferences, limit=room, engagement=engagement, with_dropped=with_dropped)
        return self.overrides.arrange(selection, limit=wanted, with_dropped=with_dropped)


def load_overrides(session: Session, edition_id: int) -> Overrides:
    rows = session.scalars(select(EditionOverrideRow).where(EditionOverrideRow.edition_id == edition_id)).all()
    if not rows:
        return Overrides()
    ordered = sorted((r for r in rows if r.position is not None), key=lambda r: (r.position, r.article_id))
    return Overrides(
        pinned=frozenset(r.article_id for r in rows if r.pinned),
        added=frozenset(r.article_id for r in rows if r.added),
        left_out={r.article_id: r.reason for r in rows if r.left_out},
        order=tuple(r.article_id for r in ordered))
