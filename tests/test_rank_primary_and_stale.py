"""The topic cap counts an article once, under its primary topic; stale live blogs are not news; an old date
shows its year. All articles here are fictional."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from digest.models import Article
from digest.rank.score import RankSettings, primary_topic
from digest.rank.select import STALE_LIVE_BLOG, rank_articles
from digest.rank.stale import is_live_blog, started_on
from digest.render.context import time_label
from tests.rank_support import STORIES, settings

NOW = datetime(2031, 3, 4, 7, 0, tzinfo=UTC)
WINDOW = (NOW - timedelta(hours=24), NOW)


def art(article_id: str, title: str, *, hours: float = 1.0, topics: list[str] | None = None, **kw: Any) -> Article:
    return Article(id=article_id, title=title, outlet="Fictional Daily", published_at=NOW - timedelta(hours=hours),
                   topics=topics if topics is not None else ["general"], **kw)


def test_a_world_story_that_also_carries_politics_is_not_dropped_because_politics_is_full() -> None:
    politics = [art(f"p{i}", STORIES[i], hours=i * 0.1, topics=["politics"]) for i in range(2)]
    world = art("w", STORIES[5], hours=3, topics=["world", "politics"])
    selection = rank_articles([*politics, world], settings=settings(max_per_topic=2, min_articles=2), now=NOW)
    assert selection.article_ids == ["p0", "p1", "w"]
    # Counted under politics (its first topic, nothing weighs more) a second politics+world story is capped.
    both = art("pw", STORIES[6], hours=2, topics=["politics", "world"])
    capped = rank_articles([*politics, both], settings=settings(max_per_topic=2, min_articles=2), now=NOW)
    assert capped.article_ids == ["p0", "p1"] and [(d.id, d.reason) for d in capped.dropped] == [("pw", "topic cap")]


def test_the_primary_topic_is_the_one_the_list_weighs_most_else_the_first() -> None:
    rs = RankSettings.from_settings(settings(topic_weights={"world": 0.5}))
    assert primary_topic(("politics", "world"), rs) == "world"
    assert primary_topic(("politics", "sport"), rs) == "politics"
    assert primary_topic((), rs) is None
    # A reader's chosen topic comes first: for a world reader a politics+world story is a world story.
    assert primary_topic(("politics", "sport"), rs, frozenset({"sport"})) == "sport"


def test_a_reader_of_world_gets_world_stories_first_and_others_fill_the_rest() -> None:
    world = [art(f"w{i}", STORIES[i], hours=5 + i, topics=["world", "politics"]) for i in range(3)]
    other = [art(f"o{i}", STORIES[6 + i], hours=i * 0.1, topics=["politics"]) for i in range(3)]
    s = settings(max_per_topic=3, max_articles=5)
    selection = rank_articles([*world, *other], settings=s, now=NOW, topics=["world"])
    assert selection.article_ids[:3] == ["w0", "w1", "w2"]
    # The world stories count under world for this reader, so politics still has room for the fresh ones.
    assert selection.article_ids[3:] == ["o0", "o1"]
    assert [i.components["affinity"] > 0 for i in selection.items] == [True, True, True, False, False]


def test_a_live_blog_that_started_before_the_window_is_not_news() -> None:
    stale = art("live-old", "Transfer deadline day – live!", hours=2,
                url="https://news.example.org/football/live/2031/mar/01/transfer-deadline-day-live")
    today = art("live-new", "Election night – live!", hours=2,
                url="https://news.example.org/politics/live/2031/mar/04/election-night-live")
    undated_url = art("ticker", "Liveticker: Hochwasser an der Welm", hours=2, url="https://example.org/a/1")
    plain = art("plain", STORIES[0], hours=2, url="https://news.example.org/2031/mar/01/harbour-ferry")
    selection = rank_articles([stale, today, undated_url, plain], settings=settings(), now=NOW, window=WINDOW)
    assert sorted(selection.article_ids) == ["live-new", "plain", "ticker"]
    assert [(d.id, d.reason) for d in selection.dropped] == [("live-old", STALE_LIVE_BLOG)]
    # A frozen pool does not bring it back: the window still says when the edition's news began.
    frozen = rank_articles([stale, today], settings=settings(), now=NOW, window=WINDOW, pool={"live-old", "live-new"})
    assert frozen.article_ids == ["live-new"]


def test_live_blog_markers_in_the_feeds_languages() -> None:
    for title in ("Tottenham v Manchester United: Premier League – live!", "Budget day: as it happened",
                  "Suivez en direct l'émission", "Eleições ao vivo", "Elecciones en vivo", "News-Ticker zur Wahl",
                  "Live: storm hits the coast", "Liveblog zur Bundestagswahl"):
        assert is_live_blog(Article(id="x", title=title)), title
    for title in ("Live music returns to the old mill", "Residents live with the noise of the quarry"):
        assert not is_live_blog(Article(id="x", title=title)), title
    assert started_on(Article(id="x", title="t", url="https://www.lemonde.fr/jo/live/2018/02/11/suivez_5.html")) \
        == date(2018, 2, 11)
    assert started_on(Article(id="x", title="t", url="https://example.org/live/2018/jan/31/x")) == date(2018, 1, 31)
    assert started_on(Article(id="x", title="t", url="https://example.org/live/x")) is None


def test_a_date_more_than_a_year_old_shows_its_year() -> None:
    edition = date(2031, 3, 4)
    assert time_label(datetime(2031, 3, 4, 6, 0, tzinfo=UTC), UTC, edition) == "06:00 UTC"
    assert time_label(datetime(2031, 3, 2, 6, 0, tzinfo=UTC), UTC, edition) == "2 Mar, 06:00 UTC"
    assert time_label(datetime(2030, 3, 3, 6, 0, tzinfo=UTC), UTC, edition) == "3 Mar 2030, 06:00 UTC"
    assert time_label(datetime(2018, 1, 31, 9, 5, tzinfo=UTC), UTC, edition) == "31 Jan 2018, 09:05 UTC"
