"""Choosing an edition's articles for one reader: filter, score, one story once, diversity, limits.

Pure: no database, no clock. ``rank_articles`` is the one-call interface; ``Ranker`` does the work that does not
depend on the reader (filters, base scores, duplicate groups) once, so many preference profiles can be ranked
from the same candidates cheaply (``editions.variants_for_list``, the benchmark).

The order of a selection is: pinned articles first, then score (high first); ties go to the later publication
time, then to the smaller article id. Inputs are sorted by id before anything else, so the result does not
depend on the order the candidates came in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime

import numpy as np

from digest.config import Settings
from digest.models import AlsoCovered, Article, Dropped, RankedItem, Selection
from digest.rank import score as sc
from digest.rank.dedupe import cluster_labels, retold
from digest.rank.stale import stale_live_blog

ALREADY_SENT = "already sent"
OUTSIDE_WINDOW = "outside the window"
STALE_LIVE_BLOG = "stale live blog"
TOPIC_CAP = "topic cap"
BELOW_LIMIT = "below the limit"
DUPLICATE_OF = "duplicate of "
ALREADY_SENT_AS = "already sent as "
# The kinds of reason, for counting them: the two that name another article are reduced to these.
DUPLICATE = "duplicate"
RETOLD = "retold"


def duplicate_of(article_id: str) -> str:
    return DUPLICATE_OF + article_id


def already_sent_as(article_id: str) -> str:
    """The reason for a candidate that retells a story the list sent in a recent edition as ``article_id``."""
    return ALREADY_SENT_AS + article_id


def reason_kind(reason: str) -> str:
    """What kind of reason a ``Dropped`` reason is, without the article it may name: ``DUPLICATE``, ``RETOLD``,
    ``OUTSIDE_WINDOW``, ``STALE_LIVE_BLOG``, ``ALREADY_SENT``, ``TOPIC_CAP`` or ``BELOW_LIMIT``."""
    if reason.startswith(DUPLICATE_OF):
        return DUPLICATE
    # "already sent as X" starts with "already sent": a retelling must not be counted as the article itself.
    if reason.startswith(ALREADY_SENT_AS):
        return RETOLD
    return reason


class Ranker:
    """Candidates prepared once (filtered, base-scored, grouped into stories); ``select`` ranks one reader.

    ``window`` is [start, end): articles published outside it are dropped, unless ``pool`` is given, in which
    case the pool (the ids an edition froze) alone decides. ``already_sent`` ids are dropped first. A live blog
    that started before the window is dropped as ``stale live blog`` even when its last update is inside it.
    ``remembered`` are articles the list sent in recent editions: a candidate telling one of their stories again
    (another outlet's version, a rewrite) is dropped as ``already sent as <id>``. ``remembered_context`` are the
    other articles of those editions, which link today's version of a story to the one sent when it resembles
    a version that was left out as a duplicate then. ``pinned`` adds to the articles' own ``pinned`` flag.
    ``now`` is the reference time of freshness (an edition's cut-off).
    """

    def __init__(self, candidates: Iterable[Article], *, settings: Settings | sc.RankSettings, now: datetime,
                 window: tuple[datetime, datetime] | None = None, pool: Collection[str] | None = None,
                 already_sent: Collection[str] = (), pinned: Collection[str] = (),
                 remembered: Iterable[Article] = (), remembered_context: Iterable[Article] = ()) -> None:
        self.rs = settings if isinstance(settings, sc.RankSettings) else sc.RankSettings.from_settings(settings)
        self.now = now
        unique: dict[str, Article] = {}
        for article in candidates:
            unique.setdefault(article.id, article)
        sent = set(already_sent)
        pool_ids = set(pool) if pool is not None else None
        self.excluded: list[Dropped] = []
        articles: list[Article] = []
        for article_id in sorted(unique):
            article = unique[article_id]
            if article_id in sent:
                self.excluded.append(Dropped(article_id, ALREADY_SENT))
            elif not _inside(article, window, pool_ids):
                self.excluded.append(Dropped(article_id, OUTSIDE_WINDOW))
            elif window is not None and stale_live_blog(article, window[0]):
                self.excluded.append(Dropped(article_id, STALE_LIVE_BLOG))
            else:
                articles.append(article)
        # A pinned article is the editor's explicit choice: it is shown even if it retells an earlier story.
        pinned_ids = set(pinned)
        # Matched against the articles still in the running: a told article is usually among the candidates as
        # well (yesterday's, just outside the window, or already sent), but only as one already left out.
        in_running = {a.id for a in articles}
        told = {a.id: a for a in remembered if a.id not in in_running}
        context = {a.id: a for a in remembered_context if a.id not in in_running and a.id not in told}
        retelling = retold([a for a in articles if not (a.pinned or a.id in pinned_ids)], list(told.values()),
                           self.rs.duplicate_threshold, list(context.values())) if told else {}
        if retelling:
            self.excluded += [Dropped(a.id, already_sent_as(retelling[a.id])) for a in articles if a.id in retelling]
            articles = [a for a in articles if a.id not in retelling]
        self.articles = articles
        n = len(articles)
        self.topics = [frozenset(sc.norm_topic(t) for t in a.topics) for a in articles]
        # The topic cap counts each article once, under a primary topic that may depend on the reader: computed
        # per distinct ordered topic list, not per article.
        orders: dict[tuple[str, ...], int] = {}
        self.topic_order = np.array([orders.setdefault(sc.ordered_topics(a.topics), len(orders)) for a in articles],
                                    dtype=np.int64)
        self.topic_orders = list(orders)
        self.pinned = np.array([a.pinned or a.id in pinned_ids for a in articles], dtype=bool)
        self.base_parts = [sc.base_components(a, t, now, self.rs) for a, t in zip(articles, self.topics)]
        self.base = np.array([sum(p.values()) for p in self.base_parts], dtype=np.float64)
        # Readers differ only through topics, so the reader-dependent terms are computed per distinct topic set.
        signatures: dict[frozenset[str], int] = {}
        self.signature = np.array([signatures.setdefault(t, len(signatures)) for t in self.topics], dtype=np.int64)
        self.signature_topics = list(signatures)
        # Stable tie-break: later publication first, then smaller id (articles are already in id order).
        by_recency = sorted(range(n), key=lambda i: (-_timestamp(articles[i]), articles[i].id))
        self.tiebreak = np.empty(n, dtype=np.int64)
        self.tiebreak[by_recency] = np.arange(n)
        self.story = cluster_labels(articles, self.rs.duplicate_threshold)
        members: dict[int, list[int]] = {}
        for i, label in enumerate(self.story):
            members.setdefault(label, []).append(i)
        self.members = members

    def select(self, preferences: Iterable[str] | None = None, *, limit: int | None = None,
               engagement: Mapping[str, float] | None = None, with_dropped: bool = True) -> Selection:
        """The selection for one reader. ``with_dropped=False`` skips explaining every article left out."""
        rs = self.rs
        limit = rs.max_articles if limit is None else limit
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        prefs = frozenset(sc.norm_topic(t) for t in preferences or ())
        clicks = sc.normalize_clicks(engagement)
        reader = [sc.reader_components(t, prefs, clicks, rs) for t in self.signature_topics]
        bonus = np.array([sum(r.values()) for r in reader] or [0.0], dtype=np.float64)
        scores = self.base + bonus[self.signature]
        order = np.lexsort((self.tiebreak, -scores, ~self.pinned)).tolist()

        primaries = [sc.primary_topic(t, rs, prefs) for t in self.topic_orders]
        kept: dict[int, int] = {}  # story label -> index of the article shown for it
        selected: list[int] = []
        capped: list[int] = []
        below: list[int] = []
        dropped: list[Dropped] = list(self.excluded) if with_dropped else []
        per_topic: Counter[str] = Counter()
        cap = rs.max_per_topic
        for i in order:
            label = self.story[i]
            if label in kept:
                if with_dropped:
                    dropped.append(Dropped(self.articles[i].id, duplicate_of(self.articles[kept[label]].id)))
                continue
            kept[label] = i
            if len(selected) >= limit:
                if not with_dropped:
                    break
                below.append(i)
            elif cap and not self.pinned[i] and (primary := primaries[self.topic_order[i]]) is not None \
                    and per_topic[primary] >= cap:
                capped.append(i)
            else:
                selected.append(i)
                counted = primaries[self.topic_order[i]]
                if counted is not None:
                    per_topic[counted] += 1
        # Diversity gives way to the minimum: a thin day takes capped stories rather than sending fewer.
        wanted = min(rs.min_articles, limit)
        if len(selected) < wanted and capped:
            take = capped[:wanted - len(selected)]
            capped = capped[len(take):]
            position = {i: p for p, i in enumerate(order)}
            selected = sorted(selected + take, key=position.__getitem__)
        if with_dropped:
            reasons = {i: TOPIC_CAP for i in capped} | {i: BELOW_LIMIT for i in below}
            dropped += [Dropped(self.articles[i].id, reasons[i]) for i in order if i in reasons]
        items = [self._item(i, scores, reader) for i in selected]
        return Selection(items=items, dropped=dropped, thin=len(items) < wanted)

    def _item(self, i: int, scores: np.ndarray, reader: Sequence[dict[str, float]]) -> RankedItem:
        components = {**self.base_parts[i], **reader[int(self.signature[i])]}
        if self.pinned[i]:
            components["pinned"] = 1.0
        # The other outlets in an order that does not depend on the reader (their reader-independent score, then
        # the stable tie-break): a variant is keyed by its article ids alone, so everything it shows must follow
        # from them, whichever reader's profile happened to produce it first.
        others = sorted((j for j in self.members[self.story[i]] if j != i),
                        key=lambda j: (-self.base[j], self.tiebreak[j]))
        also = [AlsoCovered(self.articles[j].id, self.articles[j].title, self.articles[j].outlet,
                            self.articles[j].url) for j in others]
        return RankedItem(article=self.articles[i], score=float(scores[i]), components=components,
                          also_covered_by=also)


def rank_articles(candidates: Iterable[Article], *, settings: Settings | sc.RankSettings, now: datetime,
                  topics: Iterable[str] | None = None, limit: int | None = None,
                  pinned: Collection[str] = (), engagement: Mapping[str, float] | None = None,
                  window: tuple[datetime, datetime] | None = None, pool: Collection[str] | None = None,
                  already_sent: Collection[str] = (), remembered: Iterable[Article] = (),
                  remembered_context: Iterable[Article] = ()) -> Selection:
    """Rank ``candidates`` for a reader with ``topics`` preferences: ordered items and why the rest were left out.

    ``settings`` is a ``digest.config.Settings`` (or ``score.RankSettings``); ``engagement`` maps topic to
    clicks normalized 0..1 and is weighted by ``weight_engagement``.
    """
    ranker = Ranker(candidates, settings=settings, now=now, window=window, pool=pool,
                    already_sent=already_sent, pinned=pinned, remembered=remembered,
                    remembered_context=remembered_context)
    return ranker.select(topics, limit=limit, engagement=engagement)


def _inside(article: Article, window: tuple[datetime, datetime] | None, pool: set[str] | None) -> bool:
    if pool is not None:
        return article.id in pool
    if window is None:
        return True
    return article.published_at is not None and window[0] <= article.published_at < window[1]


def _timestamp(article: Article) -> float:
    return article.published_at.timestamp() if article.published_at else float("-inf")


def why_chosen(selection: Selection, preferences: Iterable[str]) -> list[str]:
    """For each selected item, in order, why it is in (what `digest rank --explain` says): pinned; one of the
    reader's topics; ranked on its score ahead of some of them; or filling the rest once every story of the
    reader's topics that fits is in."""
    prefs = sorted(frozenset(sc.norm_topic(t) for t in preferences))
    reasons: list[str] = []
    for n, item in enumerate(selection.items):
        topics = [t for t in sc.ordered_topics(item.article.topics) if t in prefs]
        if "pinned" in item.components:
            reasons.append("pinned by an editor")
        elif not prefs:
            reasons.append("on its score (no topic preferences)")
        elif topics:
            reasons.append("one of the reader's topics (" + ", ".join(topics) + ")")
        elif any(later.components.get("affinity", 0.0) > 0 for later in selection.items[n + 1:]):
            reasons.append("on its score, ahead of some stories of the reader's topics")
        else:
            reasons.append("fills the rest: every story of the reader's topics (" + ", ".join(prefs)
                           + ") that fits is already in")
    return reasons


def counted_under(item: RankedItem, rs: sc.RankSettings, preferences: Iterable[str]) -> str | None:
    """The topic the item counts under for the topic cap (``score.primary_topic``)."""
    prefs = frozenset(sc.norm_topic(t) for t in preferences)
    return sc.primary_topic(sc.ordered_topics(item.article.topics), rs, prefs)
