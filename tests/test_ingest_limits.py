"""One set of field limits for every reader, in step with the store's columns; topics merged by the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import String, Text

from digest.errors import ConfigError, ParseError
from digest.ingest.feeds import parse_feed
from digest.ingest.jsonl import parse_json
from digest.ingest.newslooks import parse_newslooks
from digest.ingest.pipeline import ingest_sources
from digest.ingest.topics import parse_outlet_names
from digest.models import ARTICLE_LIMITS, Article
from digest.store.articles import get_article, upsert_article
from digest.store.db import Store
from digest.store.tables import ArticleRow

TITLE_LIMIT = ARTICLE_LIMITS["title"]


def test_the_limits_are_the_store_columns() -> None:
    columns = ArticleRow.__table__.columns
    sized = {c.name: c.type.length for c in columns if isinstance(c.type, String) and c.type.length}
    sized.pop("content_hash")  # computed, never read from a source
    assert sized == {k: v for k, v in ARTICLE_LIMITS.items() if k != "title"}
    assert isinstance(columns["title"].type, Text)  # the title's limit is editorial, not the column's


def test_every_reader_applies_the_same_title_limit() -> None:
    fits, long = "T" * TITLE_LIMIT, "T" * (TITLE_LIMIT + 1)
    assert parse_json(json.dumps({"title": fits}), source="a.json").articles[0].title == fits
    with pytest.raises(ParseError, match=rf"field 'title' is {TITLE_LIMIT + 1} characters \(at most {TITLE_LIMIT}\)"):
        parse_json(json.dumps({"title": long}), source="a.json")
    with pytest.raises(ParseError, match=rf"title field is {TITLE_LIMIT + 1} characters \(at most {TITLE_LIMIT}\)"):
        parse_newslooks(f"{long}/ Outlet/ CITY/ Author/ Edition/ The lede.\n", source="a.txt")
    feed = (f"<rss version='2.0'><channel><title>Feed</title><item><title>{long}</title>"
            "<link>https://example.org/a</link><description>Text.</description></item></channel></rss>")
    [article] = parse_feed(feed.encode(), source="feed.xml").articles
    assert len(article.title) == TITLE_LIMIT and article.title.endswith("…")  # a feed item is cut, not refused


def test_an_outlet_name_longer_than_the_column_is_a_config_error() -> None:
    assert parse_outlet_names({"Feed": "O" * ARTICLE_LIMITS["outlet"]}) == {"feed": "O" * ARTICLE_LIMITS["outlet"]}
    with pytest.raises(ConfigError, match=r"outlet_names\['Feed'\] is 201 characters \(at most 200\)"):
        parse_outlet_names({"Feed": "O" * 201})


def test_upsert_merges_topics_only_when_asked(store: Store) -> None:
    when = datetime(2031, 3, 4, 6, 0, tzinfo=UTC)
    with store.session() as s:
        assert upsert_article(s, Article(id="a1", title="A", topics=["world"], published_at=when)) == "new"
    with store.session() as s:
        article = Article(id="a1", title="A", topics=["europe"], published_at=when)
        assert upsert_article(s, article, merge_topics=True) == "updated"
        assert article.topics == ["world", "europe"]
    with store.session() as s:
        assert get_article(s, "a1").topics == ["world", "europe"]
        assert upsert_article(s, Article(id="a1", title="A", topics=["europe"], published_at=when)) == "updated"
    with store.session() as s:
        assert get_article(s, "a1").topics == ["europe"]


def test_json_topics_replace_and_text_topics_accumulate(store: Store, tmp_path: Path) -> None:
    exported = tmp_path / "a.json"
    record = {"id": "j1", "title": "A", "topics": ["world", "europe"], "published_at": "2031-03-04T06:00:00+00:00"}
    exported.write_text(json.dumps([record]), encoding="utf-8")
    ingest_sources(store, [str(exported)])
    exported.write_text(json.dumps([{**record, "topics": ["world"]}]), encoding="utf-8")
    ingest_sources(store, [str(exported)])
    text = tmp_path / "a.txt"
    text.write_text("Ferry Timetable/ Fictional Gazette/ PORT/ A. Example/ Morning/ Two late ferries.\n",
                    encoding="utf-8")
    ingest_sources(store, [str(text)], topics=["harbour"])
    [report] = ingest_sources(store, [str(text)]).sources
    with store.session() as s:
        assert get_article(s, "j1").topics == ["world"]
        assert get_article(s, report.article_ids[0]).topics == ["harbour"]
