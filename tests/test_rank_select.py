"""Ranking rules on constructed article sets (pure: no database). All articles here are fictional."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest.errors import ConfigError
from digest.models import Article
from digest.rank import dedupe
from digest.rank.score import RankSettings, score
from digest.rank.select import Ranker, rank_articles
from tests.rank_support import STORIES, settings

NOW = datetime(2031, 3, 4, 7, 0, tzinfo=UTC)


def art(article_id: str, title: str, *, hours: float = 1.0, topics: list[str] | None = None,
        outlet: str = "Fictional Daily", summary: str | None = None, **kw: Any) -> Article:
    return Article(id=article_id, title=title, outlet=outlet, published_at=NOW - timedelta(hours=hours),
                   topics=topics if topics is not None else ["general"], summary=summary, **kw)


def test_fresher_article_wins_at_equal_priority() -> None:
    older = art("old", STORIES[0], hours=10)
    newer = art("new", STORIES[1], hours=2)
    selection = rank_articles([older, newer], settings=settings(), now=NOW)
    assert selection.article_ids == ["new", "old"]
    assert selection.items[0].components["freshness"] > selection.items[1].components["freshness"]


def test_half_life_halves_freshness() -> None:
    rs = RankSettings.from_settings(settings(half_life_hours=6.0, weight_quality=0.0))
    total, parts = score(art("a", STORIES[0], hours=6), now=NOW, rs=rs)
    assert parts["freshness"] == pytest.approx(0.5)
    assert total == pytest.approx(sum(parts.values()))


def test_editorial_priority_outranks_freshness_when_weighted() -> None:
    s = settings(topic_weights={"politics": 2.0}, outlet_weights={"Fictional Gazette": 0.5})
    fresh = art("fresh", STORIES[0], hours=0, topics=["weather"])
    important = art("important", STORIES[1], hours=8, topics=["Politics"])
    gazette = art("gazette", STORIES[2], hours=0, topics=["weather"], outlet="fictional gazette")
    selection = rank_articles([fresh, important, gazette], settings=s, now=NOW)
    assert selection.article_ids == ["important", "gazette", "fresh"]
    assert selection.items[0].components["priority"] == pytest.approx(2.0)
    assert selection.items[1].components["priority"] == pytest.approx(0.5)


def test_quality_counts_own_quick_looks_deep_look_and_length() -> None:
    plain = art("plain", STORIES[0])
    rich = art("rich", STORIES[1], quick_looks=["One point.", "Another point."], deep_look_title="Deep Look")
    derived = art("derived", STORIES[2], quick_looks=["Derived point."], quick_looks_derived=True)
    selection = rank_articles([plain, rich, derived], settings=settings(), now=NOW)
    q = {i.article.id: i.components["quality"] for i in selection.items}
    assert q["rich"] > q["derived"] == q["plain"]
    assert selection.article_ids[0] == "rich"


def test_pinned_article_leads_whatever_its_score() -> None:
    articles = [art(f"a{i}", STORIES[i], hours=i) for i in range(5)]
    stale_pinned = art("pin", STORIES[9], hours=40, pinned=True)
    selection = rank_articles([*articles, stale_pinned], settings=settings(), now=NOW)
    assert selection.article_ids[0] == "pin"
    assert selection.items[0].components["pinned"] == 1.0
    # Pinning through the parameter (an editor's pin not yet stored on the article) works the same way.
    by_param = rank_articles(articles, settings=settings(), now=NOW, pinned={"a4"})
    assert by_param.article_ids[0] == "a4"


def test_near_duplicates_from_different_outlets_collapse_and_name_each_other() -> None:
    summary = ("The harbour council voted on Tuesday to add two late ferries on weekdays and a new stop at the "
               "island school, starting in November.")
    first = art("gazette", "Harbour council approves new ferry timetable for the winter", hours=1,
                outlet="Fictional Gazette", summary=summary)
    second = art("courier", "Harbour council approves new ferry timetable for winter", hours=3,
                 outlet="Fictional Courier", summary=summary.replace("on Tuesday ", ""))
    other = art("other", STORIES[1], hours=2)
    selection = rank_articles([second, other, first], settings=settings(), now=NOW)
    assert selection.article_ids == ["gazette", "other"]
    kept = selection.items[0]
    assert [(o.id, o.outlet) for o in kept.also_covered_by] == [("courier", "Fictional Courier")]
    assert [(d.id, d.reason) for d in selection.dropped] == [("courier", "duplicate of gazette")]


FERRY_SUMMARY = ("The harbour council voted on Tuesday to add two late ferries on weekdays and a new stop at the "
                 "island school, starting in November.")


def test_the_feed_version_of_a_story_matches_the_newslooks_one_with_its_own_quick_looks() -> None:
    lede = FERRY_SUMMARY
    newslooks = art("newslooks", "Harbour council approves new ferry timetable for the winter", summary=lede,
                    outlet="Fictional Gazette", quick_looks=[
                        "Two late ferries will run on weekdays from November.",
                        "A new stop serves the island school for the first time.",
                        "Councillors debated the cost of extra crews for three hours.",
                        "Residents asked for a Sunday service, which was put off.",
                        "The timetable will be reviewed again after the first winter."])
    feed = art("feed", "Harbour council approves new ferry timetable for the winter", summary=lede, hours=2,
               outlet="Fictional Courier")
    other = art("other", STORIES[1], hours=3)
    selection = rank_articles([feed, other, newslooks], settings=settings(), now=NOW)
    assert selection.article_ids == ["newslooks", "other"]
    assert [d.reason for d in selection.dropped] == ["duplicate of newslooks"]
    # Without a lede, an article's Quick Looks stand in for it.
    bullets_only = art("bullets", newslooks.title, quick_looks=[lede])
    assert dedupe.story_text(bullets_only) == dedupe.story_text(feed)


def test_a_story_the_list_already_sent_is_not_told_again_by_another_outlet() -> None:
    yesterday = art("gazette-mon", "Harbour council approves new ferry timetable for the winter", hours=26,
                    outlet="Fictional Gazette",
                    summary="The harbour council voted on Tuesday to add two late ferries on weekdays from November.")
    retold = art("courier-tue", "Harbour council approves new ferry timetable for winter", hours=2,
                 outlet="Fictional Courier",
                 summary="Two late ferries on weekdays and a new stop at the island school, starting in November.")
    # Only like ``retold``, not like yesterday's article: the same story through the retelling.
    echo = art("echo-tue", "Island school gets its own ferry stop", hours=1, outlet="Fictional Echo",
               summary="A new stop at the island school opens in November with the winter timetable, to mixed "
                       "reactions from riders.")
    threshold = settings().duplicate_threshold
    assert dedupe.similarity(*(dedupe.terms(a) for a in (echo, yesterday))) < threshold
    assert dedupe.similarity(*(dedupe.terms(a) for a in (echo, retold))) >= threshold
    fresh = art("fresh", STORIES[1], hours=3)
    without_memory = rank_articles([retold, echo, fresh], settings=settings(), now=NOW)
    assert without_memory.article_ids == ["echo-tue", "fresh"]
    selection = rank_articles([fresh, echo, retold], settings=settings(), now=NOW, remembered=[yesterday])
    assert selection.article_ids == ["fresh"]
    assert {d.id: d.reason for d in selection.dropped} == {"courier-tue": "already sent as gazette-mon",
                                                           "echo-tue": "already sent as gazette-mon"}
    # The editor's pin wins over the memory.
    pinned = rank_articles([fresh, retold], settings=settings(), now=NOW, remembered=[yesterday],
                           pinned={"courier-tue"})
    assert pinned.article_ids == ["courier-tue", "fresh"]


def test_remembered_stories_name_the_smallest_id_whatever_the_order() -> None:
    candidate = art("c", "Regional rail operator orders twelve quieter electric trains for the coastal line")
    memories = [art(m, candidate.title + suffix, hours=30) for m, suffix in (("m2", " today"), ("m1", ""))]
    for order in (memories, memories[::-1]):
        assert dedupe.retold([candidate], order, 0.32) == {"c": "m1"}
    assert dedupe.retold([candidate], [art("m3", STORIES[4], hours=30)], 0.32) == {}
    assert dedupe.retold([], memories, 0.32) == {} and dedupe.retold([candidate], [], 0.32) == {}


def test_story_memory_days_must_not_be_negative() -> None:
    with pytest.raises(ConfigError, match="story_memory_days"):
        RankSettings.from_settings(settings(story_memory_days=-1))


def test_reader_score_decides_which_duplicate_is_kept() -> None:
    text = "Regional rail operator orders twelve quieter electric trains for the coastal line"
    a = art("a", text, hours=1, topics=["business"])
    b = art("b", text + " today", hours=2, topics=["transport"])
    assert rank_articles([a, b], settings=settings(), now=NOW).article_ids == ["a"]
    transport_reader = rank_articles([a, b], settings=settings(), now=NOW, topics=["transport"])
    assert transport_reader.article_ids == ["b"]
    assert transport_reader.items[0].also_covered_by[0].id == "a"


def test_topic_cap_holds() -> None:
    politics = [art(f"p{i}", STORIES[i], hours=i * 0.1, topics=["politics"]) for i in range(6)]
    sport = [art(f"s{i}", STORIES[6 + i], hours=5 + i, topics=["sport"]) for i in range(3)]
    selection = rank_articles(politics + sport, settings=settings(max_per_topic=3, max_articles=8), now=NOW)
    topics = [i.article.topics[0] for i in selection.items]
    assert topics.count("politics") == 3
    assert topics.count("sport") == 3
    assert {d.id: d.reason for d in selection.dropped} == {"p3": "topic cap", "p4": "topic cap", "p5": "topic cap"}


def test_topic_cap_gives_way_to_reach_min_articles() -> None:
    politics = [art(f"p{i}", STORIES[i], hours=i, topics=["politics"]) for i in range(5)]
    selection = rank_articles(politics, settings=settings(max_per_topic=2, min_articles=4), now=NOW)
    assert selection.article_ids == ["p0", "p1", "p2", "p3"]
    assert not selection.thin
    assert [(d.id, d.reason) for d in selection.dropped] == [("p4", "topic cap")]


def test_limit_min_and_thin_days() -> None:
    articles = [art(f"a{i:02d}", STORIES[i], hours=i, topics=[f"t{i}"]) for i in range(10)]
    selection = rank_articles(articles, settings=settings(max_articles=4), now=NOW)
    assert selection.article_ids == ["a00", "a01", "a02", "a03"]
    assert [d.reason for d in selection.dropped] == ["below the limit"] * 6
    assert rank_articles(articles, settings=settings(), now=NOW, limit=2).article_ids == ["a00", "a01"]
    thin = rank_articles(articles[:2], settings=settings(min_articles=3), now=NOW)
    assert thin.thin and len(thin.items) == 2


def test_topic_preferences_reorder() -> None:
    business = art("biz", STORIES[0], hours=1, topics=["business"])
    culture = art("cult", STORIES[1], hours=4, topics=["culture"])
    science = art("sci", STORIES[2], hours=2, topics=["science"])
    candidates = [business, culture, science]
    assert rank_articles(candidates, settings=settings(), now=NOW).article_ids == ["biz", "sci", "cult"]
    assert rank_articles(candidates, settings=settings(), now=NOW,
                         topics=["Culture"]).article_ids == ["cult", "biz", "sci"]
    assert rank_articles(candidates, settings=settings(), now=NOW,
                         topics=["science", "culture"]).article_ids == ["sci", "cult", "biz"]


def test_engagement_hook_is_weighted_by_its_setting() -> None:
    a = art("a", STORIES[0], hours=1, topics=["business"])
    b = art("b", STORIES[1], hours=2, topics=["culture"])
    clicks = {"culture": 1.0, "business": 0.1}
    off = rank_articles([a, b], settings=settings(), now=NOW, engagement=clicks)
    assert off.article_ids == ["a", "b"]  # weight_engagement defaults to 0: the hook is off
    on = rank_articles([a, b], settings=settings(weight_engagement=1.0), now=NOW, engagement=clicks)
    assert on.article_ids == ["b", "a"]
    assert on.items[0].components["engagement"] == pytest.approx(1.0)


def test_window_and_already_sent_are_dropped_with_reasons() -> None:
    inside = art("in", STORIES[0], hours=2)
    early = art("early", STORIES[1], hours=30)
    late = art("late", STORIES[2], hours=-1)  # published after the cut-off
    sent = art("sent", STORIES[3], hours=3)
    window = (NOW - timedelta(hours=24), NOW)
    selection = rank_articles([inside, early, late, sent], settings=settings(), now=NOW, window=window,
                              already_sent={"sent"})
    assert selection.article_ids == ["in"]
    assert {d.id: d.reason for d in selection.dropped} == {
        "early": "outside the window", "late": "outside the window", "sent": "already sent"}
    # A frozen pool decides membership on its own, whatever the publication times.
    frozen = rank_articles([inside, early, late], settings=settings(), now=NOW, window=window, pool={"early"})
    assert frozen.article_ids == ["early"]


def test_deterministic_over_repeated_runs_and_shuffled_input() -> None:
    rng = random.Random(7)
    articles = []
    for i in range(60):
        base = STORIES[i % len(STORIES)]
        # Equal publication times and scores on purpose: the order must come from the stable tie-breaks.
        articles.append(art(f"id{i:03d}", f"{base} {'' if i < 12 else f'update {i // 12}'}", hours=(i % 4),
                            topics=[["politics", "sport", "culture"][i % 3]], outlet=f"Outlet {i % 5}"))
    first = rank_articles(articles, settings=settings(), now=NOW, topics=["sport"])
    for _ in range(5):
        shuffled = articles[:]
        rng.shuffle(shuffled)
        again = rank_articles(shuffled, settings=settings(), now=NOW, topics=["sport"])
        assert again.article_ids == first.article_ids
        assert [(d.id, d.reason) for d in again.dropped] == [(d.id, d.reason) for d in first.dropped]
        assert [[o.id for o in i.also_covered_by] for i in again.items] == \
            [[o.id for o in i.also_covered_by] for i in first.items]
        assert again.key == first.key


def test_ties_break_by_later_publication_then_smaller_id() -> None:
    same_time = [art(i, STORIES[n], hours=1, topics=[i]) for n, i in enumerate(["c", "a", "b"])]
    later = art("z", STORIES[5], hours=0.5, topics=["z"])
    selection = rank_articles([*same_time, later], settings=settings(weight_freshness=0.0), now=NOW)
    assert selection.article_ids == ["z", "a", "b", "c"]


def test_every_candidate_is_either_selected_or_dropped_once() -> None:
    articles = [art(f"a{i}", STORIES[i % 12] + ("" if i < 12 else " again"), hours=i % 7,
                    topics=[["x", "y"][i % 2]]) for i in range(30)]
    selection = rank_articles(articles, settings=settings(), now=NOW, window=(NOW - timedelta(hours=5), NOW))
    accounted = selection.article_ids + [d.id for d in selection.dropped]
    assert sorted(accounted) == sorted(a.id for a in articles)


def test_ranker_serves_many_profiles_like_single_calls() -> None:
    articles = [art(f"a{i}", STORIES[i], hours=i, topics=[["x", "y", "z"][i % 3]]) for i in range(12)]
    ranker = Ranker(articles, settings=settings(max_articles=4), now=NOW)
    for prefs in ([], ["x"], ["y", "z"]):
        fast = ranker.select(prefs, with_dropped=False)
        full = rank_articles(articles, settings=settings(max_articles=4), now=NOW, topics=prefs)
        assert fast.article_ids == full.article_ids
        assert fast.dropped == []


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ConfigError, match="half_life_hours"):
        RankSettings.from_settings(settings(half_life_hours=0.0))
    with pytest.raises(ConfigError, match=r"topic_weights\.sport"):
        RankSettings.from_settings(settings(topic_weights={"sport": "high"}))
    with pytest.raises(ConfigError, match="min_articles"):
        RankSettings.from_settings(settings(min_articles=9, max_articles=8))
    with pytest.raises(ConfigError, match="duplicate_threshold"):
        RankSettings.from_settings(settings(duplicate_threshold=1.5))


def test_lsh_finds_the_same_pairs_as_all_pairs_comparison() -> None:
    rng = random.Random(3)
    vocabulary = [f"word{i}" for i in range(400)]
    texts = []
    for story in range(80):
        words = rng.sample(vocabulary, 30)
        texts.append(" ".join(words))
        for _ in range(rng.randrange(0, 3)):  # another outlet's lightly edited copy
            edited = words[:]
            edited[rng.randrange(30)] = rng.choice(vocabulary)
            texts.append(" ".join(edited))
    sets = [dedupe.terms_of_text(t) for t in texts]
    assert dedupe.similar_pairs(sets, 0.32) == dedupe.naive_similar_pairs(sets, 0.32)
    assert len(dedupe.similar_pairs(sets, 0.32)) > 20


def _story_texts(stories: int, seed: int) -> list[str]:
    """Fictional stories of 30 made-up words, a third of them retold once or twice with a word changed."""
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(5000)]
    texts = []
    for _ in range(stories):
        words = rng.sample(vocabulary, 30)
        texts.append(" ".join(words))
        for _ in range(rng.choice((0, 0, 1, 2))):
            edited = words[:]
            edited[rng.randrange(30)] = rng.choice(vocabulary)
            texts.append(" ".join(edited))
    return texts


def test_duplicate_check_compares_about_linearly_many_pairs_not_all_pairs() -> None:
    small = [dedupe.terms_of_text(t) for t in _story_texts(1000, seed=11)]
    large = [dedupe.terms_of_text(t) for t in _story_texts(4000, seed=11)]
    checked_small = dedupe.candidate_pairs(small, 0.32)
    checked_large = dedupe.candidate_pairs(large, 0.32)
    all_pairs_large = len(large) * (len(large) - 1) // 2
    # About one proposed pair per retold story: a tiny fraction of the ~10 million an all-pairs check makes.
    assert len(checked_large) < 2 * len(large)
    assert len(checked_large) < all_pairs_large / 1000
    # Four times the articles, well under the sixteen times more pairs all-pairs would check: most proposals are
    # the retold stories (linear); the few unrelated pairs proposed for sharing a word or two grow faster.
    assert len(checked_large) < 10 * len(checked_small)
    found = dedupe.similar_pairs(large, 0.32)
    assert set(found) <= set(checked_large) and len(found) > len(large) / 5


def test_also_covered_by_does_not_depend_on_the_reader() -> None:
    text = "Regional rail operator orders twelve quieter electric trains for the coastal line"
    kept = art("kept", text, hours=1, topics=["rail"], pinned=True)
    x = art("x", text + " today", hours=2, topics=["x"])
    y = art("y", text + " this week", hours=3, topics=["y"])
    for_x = rank_articles([kept, x, y], settings=settings(), now=NOW, topics=["x"])
    for_y = rank_articles([kept, x, y], settings=settings(), now=NOW, topics=["y"])
    # Same selection, so the same variant (rendered once): what it shows must be the same for both readers.
    assert for_x.key == for_y.key and for_x.article_ids == ["kept"]
    assert [o.id for o in for_x.items[0].also_covered_by] == [o.id for o in for_y.items[0].also_covered_by]
    assert [o.id for o in for_x.items[0].also_covered_by] == ["x", "y"]  # the fresher one first


def test_the_demo_samples_gazette_copy_collapses_into_the_newslooks_story() -> None:
    """`make demo` shows "also covered by" with these two samples; this keeps that true at the default threshold."""
    from digest.ingest.pipeline import finish, parse_bytes

    samples = Path(__file__).resolve().parent.parent / "samples"
    newslooks = parse_bytes((samples / "articles/politics/harbor-council-budget-vote.txt").read_bytes(),
                            source="budget.txt").articles[0]
    gazette = next(a for a in parse_bytes((samples / "articles.json").read_bytes(), source="articles.json").articles
                   if a.id == "sample-gazette-budget")
    for article in (newslooks, gazette):
        finish(article, published=NOW - timedelta(hours=1), topics=["politics"], rules=())
    selection = rank_articles([gazette, newslooks], settings=settings(), now=NOW)
    assert selection.article_ids == [newslooks.id]  # its own Quick Looks and Deep Look score higher
    assert [(o.id, o.outlet) for o in selection.items[0].also_covered_by] == [(gazette.id, "Example Gazette")]
