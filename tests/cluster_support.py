"""The labelled story-clustering fixture (tests/fixtures/story_clusters.json, fictional) as articles, and the
pair precision and recall of a grouping of them. Shared by tests/test_rank_cluster.py and the benchmark."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.models import Article

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "story_clusters.json"
REFERENCE = datetime(2031, 3, 4, 7, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Labelled:
    articles: list[Article]
    story: list[str]  # the event (or distractor) id each article tells
    distractor: list[bool]


def load(path: Path = FIXTURE, with_language: bool = False) -> Labelled:
    """Every version of every event (an hour apart) and every distractor, dated from ``REFERENCE``.
    ``with_language`` sets each article's ``language`` attribute, as ingest does where the feed states it."""
    data = json.loads(path.read_text(encoding="utf-8"))
    articles: list[Article] = []
    story: list[str] = []
    distractor: list[bool] = []
    for event in data["events"]:
        for n, version in enumerate(event["versions"]):
            bullets = version.get("lede_in") == "quick_looks"
            article = Article(id=f"{event['id']}-{n}", title=version["title"], outlet=version["outlet"],
                              summary=None if bullets else version["lede"],
                              quick_looks=[version["lede"]] if bullets else [],
                              published_at=REFERENCE - timedelta(hours=event["hours"] + n))
            _language(article, event["lang"], with_language)
            articles.append(article)
            story.append(event["id"])
            distractor.append(False)
    for item in data["distractors"]:
        article = Article(id=item["id"], title=item["title"], outlet=item["outlet"], summary=item["lede"],
                          published_at=REFERENCE - timedelta(hours=item["hours"]))
        _language(article, item["lang"], with_language)
        articles.append(article)
        story.append(item["id"])
        distractor.append(True)
    return Labelled(articles, story, distractor)


def _language(article: Article, lang: str, wanted: bool) -> None:
    if wanted:
        object.__setattr__(article, "language", lang)


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    true_pairs: int
    found_pairs: int
    distractors_merged: int


def pair_scores(fixture: Labelled, labels: Sequence[int]) -> Scores:
    """Over all pairs of articles: a pair is found when the grouping puts both in one story, true when the
    fixture says they tell one event. ``distractors_merged``: distractors grouped with anything at all."""
    n = len(fixture.articles)
    true = {(i, j) for i, j in itertools.combinations(range(n), 2) if fixture.story[i] == fixture.story[j]}
    found = {(i, j) for i, j in itertools.combinations(range(n), 2) if labels[i] == labels[j]}
    hit = len(true & found)
    merged = sum(1 for i in range(n) if fixture.distractor[i] and sum(1 for lab in labels if lab == labels[i]) > 1)
    return Scores(precision=hit / len(found) if found else 1.0, recall=hit / len(true) if true else 1.0,
                  true_pairs=len(true), found_pairs=len(found), distractors_merged=merged)
