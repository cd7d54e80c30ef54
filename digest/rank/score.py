"""The score of one article for one reader: one formula, every weight a setting (README, "Rank").

    score = weight_freshness  · 0.5 ^ (age_hours / half_life_hours)
          + weight_priority   · (max topic_weights[t] over the article's topics + outlet_weights[outlet])
          + weight_quality    · (own_quick_looks + deep_look + min(1, words / 600)) / 3
          + weight_affinity   · (1 if the article shares a topic with the reader's preferences, else 0)
          + weight_engagement · (max clicks-per-topic share, 0..1, over the article's topics)

Pinned articles are not scored higher: they are placed first (see ``select``), so no weight can outbid an
editor's decision. Age is measured from the edition's cut-off, not the wall clock, so a variant selected later
in the day scores exactly like one selected at the cut-off.

The first three terms depend only on the article and the edition (``base_components``); the last two depend on
the reader and are added per profile, which is what lets ``select.Ranker`` rank 1,000 profiles cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from digest.config import Settings
from digest.errors import ConfigError
from digest.ingest.topics import normalize_topic
from digest.models import Article

# Body length at which the length part of quality saturates: a full news story, not a brief.
FULL_LENGTH_WORDS = 600

COMPONENTS = ("freshness", "priority", "quality", "affinity", "engagement")


def norm_topic(topic: str) -> str:
    """Topics and outlets compare as ingest stores topics (``normalize_topic``: case and spacing ignored), so
    `Politics` in a feed matches `politics` in config and `World  News` matches `world news`."""
    return normalize_topic(topic)


@dataclass(frozen=True)
class RankSettings:
    """The ranking section of the settings, checked once, with per-list overrides already applied."""

    half_life_hours: float
    weight_freshness: float
    weight_priority: float
    weight_quality: float
    weight_affinity: float
    weight_engagement: float
    topic_weights: Mapping[str, float]
    outlet_weights: Mapping[str, float]
    duplicate_threshold: float
    min_articles: int
    max_articles: int
    max_per_topic: int
    skip_thin_days: bool
    story_memory_days: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> RankSettings:
        """Validate and normalize; errors name the setting (and the table entry) that is wrong."""
        half_life = _number(settings.half_life_hours, "half_life_hours")
        if half_life <= 0:
            raise ConfigError(f"half_life_hours must be greater than 0, not {half_life}")
        threshold = _number(settings.duplicate_threshold, "duplicate_threshold")
        if not 0 < threshold <= 1:
            raise ConfigError(f"duplicate_threshold must be in (0, 1], not {threshold}")
        min_articles = int(settings.min_articles)
        max_articles = int(settings.max_articles)
        if max_articles < 1:
            raise ConfigError(f"max_articles must be at least 1, not {max_articles}")
        if min_articles < 0 or min_articles > max_articles:
            raise ConfigError(f"min_articles must be between 0 and max_articles ({max_articles}), "
                              f"not {min_articles}")
        max_per_topic = int(settings.max_per_topic)
        if max_per_topic < 0:
            raise ConfigError(f"max_per_topic must be 0 (no cap) or more, not {max_per_topic}")
        story_memory_days = int(settings.story_memory_days)
        if story_memory_days < 0:
            raise ConfigError(f"story_memory_days must be 0 (off) or more, not {story_memory_days}")
        return cls(
            half_life_hours=half_life,
            weight_freshness=_number(settings.weight_freshness, "weight_freshness"),
            weight_priority=_number(settings.weight_priority, "weight_priority"),
            weight_quality=_number(settings.weight_quality, "weight_quality"),
            weight_affinity=_number(settings.weight_affinity, "weight_affinity"),
            weight_engagement=_number(settings.weight_engagement, "weight_engagement"),
            topic_weights=_weight_table(settings.topic_weights, "topic_weights"),
            outlet_weights=_weight_table(settings.outlet_weights, "outlet_weights"),
            duplicate_threshold=threshold,
            min_articles=min_articles,
            max_articles=max_articles,
            max_per_topic=max_per_topic,
            skip_thin_days=bool(settings.skip_thin_days),
            story_memory_days=story_memory_days,
        )


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, not {value!r}")
    return float(value)


def _weight_table(table: Any, name: str) -> dict[str, float]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{name} must be a table of name = number")
    return {norm_topic(str(k)): _number(v, f"{name}.{k}") for k, v in table.items()}


def freshness(published_at: datetime | None, now: datetime, half_life_hours: float) -> float:
    """Exponential decay: 1 at the reference time, 0.5 one half-life earlier. Undated articles count as stale."""
    if published_at is None:
        return 0.0
    age_hours = max(0.0, (now - published_at).total_seconds() / 3600.0)
    return float(0.5 ** (age_hours / half_life_hours))


def priority(topics: Iterable[str], outlet: str | None, rs: RankSettings) -> float:
    topic_part = max((rs.topic_weights.get(t, 0.0) for t in topics), default=0.0)
    outlet_part = rs.outlet_weights.get(norm_topic(outlet), 0.0) if outlet else 0.0
    return topic_part + outlet_part


def quality(article: Article) -> float:
    own_quick_looks = 1.0 if article.quick_looks and not article.quick_looks_derived else 0.0
    deep_look = 1.0 if article.deep_look_title else 0.0
    text = article.body_text or article.summary or ""
    length = min(1.0, len(text.split()) / FULL_LENGTH_WORDS)
    return (own_quick_looks + deep_look + length) / 3.0


def ordered_topics(topics: Iterable[str]) -> tuple[str, ...]:
    """An article's topics normalized, in its own order, each once."""
    return tuple(dict.fromkeys(norm_topic(t) for t in topics))


def primary_topic(topics: Sequence[str], rs: RankSettings, preferences: frozenset[str] = frozenset()) -> str | None:
    """The one topic an article counts under for the topic cap: among its topics the reader chose (all of them
    if the reader chose none of its topics), the one ``topic_weights`` weighs most, ties to the first listed.
    ``topics`` as ``ordered_topics`` gives them. A world story that also carries politics counts once, so it
    is not dropped because politics is full."""
    chosen = [t for t in topics if t in preferences] or list(topics)
    if not chosen:
        return None
    best = max(rs.topic_weights.get(t, 0.0) for t in chosen)
    return next(t for t in chosen if rs.topic_weights.get(t, 0.0) == best)


def affinity(topics: Iterable[str], preferences: frozenset[str]) -> float:
    """No preferences: neutral (0 for every article), so an unpersonalized edition is ranked by the rest."""
    return 1.0 if preferences and not preferences.isdisjoint(topics) else 0.0


def engagement(topics: Iterable[str], clicks: Mapping[str, float] | None) -> float:
    if not clicks:
        return 0.0
    return max((min(1.0, max(0.0, float(clicks.get(t, 0.0)))) for t in topics), default=0.0)


def base_components(article: Article, topics: frozenset[str], now: datetime,
                    rs: RankSettings) -> dict[str, float]:
    """The reader-independent terms, each already multiplied by its weight."""
    return {
        "freshness": rs.weight_freshness * freshness(article.published_at, now, rs.half_life_hours),
        "priority": rs.weight_priority * priority(topics, article.outlet, rs),
        "quality": rs.weight_quality * quality(article),
    }


def reader_components(topics: frozenset[str], preferences: frozenset[str],
                      clicks: Mapping[str, float] | None, rs: RankSettings) -> dict[str, float]:
    """The reader-dependent terms, each already multiplied by its weight."""
    return {
        "affinity": rs.weight_affinity * affinity(topics, preferences),
        "engagement": rs.weight_engagement * engagement(topics, clicks),
    }


def score(article: Article, *, now: datetime, rs: RankSettings, preferences: Iterable[str] = (),
          clicks: Mapping[str, float] | None = None) -> tuple[float, dict[str, float]]:
    """The whole formula for one article: (score, weighted components that sum to it)."""
    topics = frozenset(norm_topic(t) for t in article.topics)
    prefs = frozenset(norm_topic(t) for t in preferences)
    parts = {**base_components(article, topics, now, rs),
             **reader_components(topics, prefs, normalize_clicks(clicks), rs)}
    return sum(parts[name] for name in COMPONENTS), parts


def normalize_clicks(clicks: Mapping[str, float] | None) -> dict[str, float] | None:
    if not clicks:
        return None
    return {norm_topic(str(k)): float(v) for k, v in clicks.items()}
