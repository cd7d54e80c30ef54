"""Topics in the newsroom's own vocabulary.

An article's topics come from three places, in this order: ``--topic`` on the command line (a folder of
Newslooks files is usually one section), the ``topic_rules`` of the configuration (keywords, outlets or feed
categories → a topic name), and the categories the source itself gave (lower-cased). Subscriber preferences and
the ranking's per-topic caps use these names, so the newsroom's names come first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from digest.errors import ConfigError
from digest.models import ARTICLE_LIMITS, Article

_RULE_FIELDS = {"topic", "keywords", "outlets", "categories"}


@dataclass(frozen=True)
class TopicRule:
    """``topic`` applies when any keyword appears as a word in the headline, lede, Quick Looks or Deep Look
    title, or the outlet or one of the source's categories equals one listed (case-insensitive)."""

    topic: str
    keywords: tuple[str, ...] = ()
    outlets: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    def matches(self, article: Article, categories: Sequence[str], outlet_aliases: Sequence[str] = ()) -> bool:
        if any(o and normalize_topic(o) in self.outlets for o in (article.outlet, *outlet_aliases)):
            return True
        if any(normalize_topic(c) in self.categories for c in categories):
            return True
        if self.keywords:
            text = " ".join([article.title, article.summary or "", article.deep_look_title or "",
                             *article.quick_looks])
            return any(_keyword_pattern(k).search(text) for k in self.keywords)
        return False


def normalize_topic(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def parse_rules(raw: Any) -> list[TopicRule]:
    """Rules from the ``topic_rules`` setting; a mistake names the rule and field (``topic_rules[2].keywords``)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError("topic_rules must be a list of tables such as {topic = \"politics\", keywords = [...]}")
    rules = []
    for index, item in enumerate(raw):
        where = f"topic_rules[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a table with topic and keywords, outlets or categories")
        unknown = set(item) - _RULE_FIELDS
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        topic = item.get("topic")
        if not isinstance(topic, str) or not topic.strip():
            raise ConfigError(f"{where}.topic must be a non-empty string")
        lists: dict[str, tuple[str, ...]] = {}
        for name in ("keywords", "outlets", "categories"):
            value = item.get(name, [])
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise ConfigError(f"{where}.{name} must be a list of non-empty strings")
            lists[name] = tuple(v.strip() if name == "keywords" else normalize_topic(v) for v in value)
        if not any(lists.values()):
            raise ConfigError(f"{where} ({topic!r}) needs at least one of keywords, outlets or categories")
        rules.append(TopicRule(normalize_topic(topic), **lists))
    return rules


def parse_outlet_names(raw: Any) -> dict[str, str]:
    """The ``outlet_names`` setting, keyed case-insensitively; a mistake names the entry."""
    if not isinstance(raw, dict):
        raise ConfigError("outlet_names must be a table such as {\"Feed Title\" = \"Outlet\"}")
    names = {}
    for source_name, name in raw.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"outlet_names[{source_name!r}] must be a non-empty string")
        outlet = " ".join(name.split())
        if len(outlet) > ARTICLE_LIMITS["outlet"]:
            # The readers keep outlets within the store's column; a rename after them must too.
            raise ConfigError(f"outlet_names[{source_name!r}] is {len(outlet)} characters "
                              f"(at most {ARTICLE_LIMITS['outlet']})")
        names[normalize_topic(source_name)] = outlet
    return names


def rename_outlet(article: Article, names: Mapping[str, str], *, feed_title: str | None = None) -> None:
    """Give the article the newsroom's name for its outlet (``outlet_names``), if it has one: keyed by the feed's
    title as written (``feed_title``) or by the outlet name the reader found in it."""
    if not names:
        return
    for key in (feed_title, article.outlet):
        if key and normalize_topic(key) in names:
            article.outlet = names[normalize_topic(key)]
            return


def assign_topics(article: Article, *, cli_topics: Iterable[str] = (), rules: Sequence[TopicRule] = (),
                  outlet_aliases: Sequence[str] = ()) -> None:
    """Set ``article.topics``: command-line topics, then rule topics, then the source's own categories.
    ``outlet_aliases`` are other names of the outlet a rule's ``outlets`` may use (a feed's title as written)."""
    categories = [normalize_topic(t) for t in article.topics if str(t).strip()]
    ordered = [normalize_topic(t) for t in cli_topics if str(t).strip()]
    ordered += [rule.topic for rule in rules if rule.matches(article, categories, outlet_aliases)]
    ordered += categories
    article.topics = list(dict.fromkeys(ordered))


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    # Whole words only: the keyword "art" must not tag every "article" or "start".
    return re.compile(r"(?<!\w)" + re.escape(keyword) + r"(?!\w)", re.IGNORECASE)
