"""Editions on both databases: windows, the frozen pool, already-sent articles, variants, concurrency.

All articles and addresses here are fictional.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from digest import editions
from digest.audience.lists import new_list_row
from digest.models import Article
from digest.rank.dedupe import similarity, terms
from digest.store.articles import upsert_article
from digest.store.db import Store
from digest.store.tables import (
    ArticleRow,
    EditionArticleRow,
    EditionRow,
    EventRow,
    MailingListRow,
    SubscriberRow,
    VariantRow,
)
from tests.rank_support import STORIES, settings

DAY = date(2031, 3, 4)
CUTOFF = datetime(2031, 3, 4, 7, 0, tzinfo=UTC)

def add_list(store: Store, name: str = "daily", **kw: Any) -> int:
    with store.session() as s:
        row = new_list_row(settings(), name, **kw)
        s.add(row)
        s.flush()
        return row.id


def add_article(store: Store, article_id: str, at: datetime, *, title: str | None = None,
                topics: list[str] | None = None) -> None:
    with store.session() as s:
        upsert_article(s, Article(id=article_id, title=title or f"Fictional item {article_id}",
                                  outlet="Fictional Daily", published_at=at, topics=topics or ["general"]))


def edition_for(s: Any, list_id: int, day: date = DAY) -> EditionRow:
    list_row = s.get(MailingListRow, list_id)
    assert list_row is not None
    return editions.get_or_create_edition(s, settings(), list_row, day)


def test_first_edition_looks_back_and_cutoff_follows_the_list_zone(store: Store) -> None:
    berlin = add_list(store, "berlin", timezone="Europe/Berlin", send_time="06:30")
    with store.session() as s:
        winter = edition_for(s, berlin, DAY)
        summer = edition_for(s, berlin, date(2031, 7, 4))
        assert winter.cutoff_at == datetime(2031, 3, 4, 5, 30, tzinfo=UTC)  # CET, UTC+1
        assert summer.cutoff_at == datetime(2031, 7, 4, 4, 30, tzinfo=UTC)  # CEST, UTC+2
        assert winter.window_start == winter.cutoff_at - timedelta(hours=24)
        assert winter.status == "draft"
        list_row = s.get(MailingListRow, berlin)
        assert list_row is not None
        short = editions.get_or_create_edition(s, settings(first_edition_lookback_hours=6), list_row,
                                               date(2031, 3, 10))
        assert short.window_start == short.cutoff_at - timedelta(hours=6)


def test_same_edition_is_returned_and_not_duplicated(store: Store) -> None:
    list_id = add_list(store)
    with store.session() as s:
        first = edition_for(s, list_id).id
    with store.session() as s:
        assert edition_for(s, list_id).id == first
        assert s.scalar(select(func.count()).select_from(EditionRow)) == 1


def test_window_starts_where_the_previous_edition_that_went_out_ended(store: Store) -> None:
    list_id = add_list(store)
    with store.session() as s:
        monday = edition_for(s, list_id, DAY)
        tuesday = edition_for(s, list_id, DAY + timedelta(days=1))
        # Nothing went out yet: tuesday is still a "first" edition.
        assert tuesday.window_start == tuesday.cutoff_at - timedelta(hours=24)
        editions.freeze(s, monday, CUTOFF - timedelta(minutes=30))  # went out half an hour early
    with store.session() as s:
        tuesday = edition_for(s, list_id, DAY + timedelta(days=1))
        assert tuesday.window_start == CUTOFF - timedelta(minutes=30)
        wednesday = edition_for(s, list_id, DAY + timedelta(days=2))
        editions.freeze(s, tuesday, tuesday.cutoff_at + timedelta(hours=2))  # went out late: the cut-off counts
    with store.session() as s:
        wednesday = edition_for(s, list_id, DAY + timedelta(days=2))
        assert wednesday.window_start == CUTOFF + timedelta(days=1)
        # Tuesday turns out to be skipped (a thin day): its articles roll over into wednesday's window.
        tuesday = edition_for(s, list_id, DAY + timedelta(days=1))
        tuesday.status = "skipped"
        s.flush()
        wednesday = edition_for(s, list_id, DAY + timedelta(days=2))
        assert wednesday.window_start == CUTOFF - timedelta(minutes=30)


def test_candidate_pool_is_the_window_without_retracted_or_already_sent(store: Store) -> None:
    list_id = add_list(store)
    add_article(store, "inside", CUTOFF - timedelta(hours=3))
    add_article(store, "at-start", CUTOFF - timedelta(hours=24))
    add_article(store, "too-old", CUTOFF - timedelta(hours=25))
    add_article(store, "at-cutoff", CUTOFF)
    add_article(store, "retracted", CUTOFF - timedelta(hours=2))
    add_article(store, "sent-before", CUTOFF - timedelta(hours=4))
    with store.session() as s:
        s.get(ArticleRow, "retracted").retracted_at = CUTOFF  # type: ignore[union-attr]
        earlier = edition_for(s, list_id, DAY - timedelta(days=7))
        editions.record_sent_articles(s, earlier, ["sent-before"])
        edition = edition_for(s, list_id)
        assert sorted(a.id for a in editions.candidate_pool(s, edition)) == ["at-start", "inside"]
        # What this edition itself sent stays its candidate (a variant needed later may include it).
        editions.record_sent_articles(s, edition, ["inside"])
        assert sorted(a.id for a in editions.candidate_pool(s, edition)) == ["at-start", "inside"]


def test_select_for_names_outside_window_and_already_sent(store: Store) -> None:
    list_id = add_list(store)
    for n in range(4):
        add_article(store, f"a{n}", CUTOFF - timedelta(hours=n + 1), title=STORIES[n], topics=[f"t{n}"])
    add_article(store, "late", CUTOFF + timedelta(hours=1), title=STORIES[5])
    add_article(store, "old", CUTOFF - timedelta(hours=30), title=STORIES[6])
    with store.session() as s:
        earlier = edition_for(s, list_id, DAY - timedelta(days=3))
        editions.record_sent_articles(s, earlier, ["a3"])
        edition = edition_for(s, list_id)
        selection = editions.select_for(s, settings(), edition, None)
        assert selection.article_ids == ["a0", "a1", "a2"]
        assert {d.id: d.reason for d in selection.dropped} == {
            "late": "outside the window", "old": "outside the window", "a3": "already sent"}
        assert selection.list_name == "daily" and selection.edition_date == DAY
        assert selection.window_start == CUTOFF - timedelta(hours=24) and selection.cutoff_at == CUTOFF


def test_frozen_pool_is_used_after_freeze_even_when_new_articles_arrive(store: Store) -> None:
    list_id = add_list(store)
    add_article(store, "before", CUTOFF - timedelta(hours=2), title=STORIES[0], topics=["x"])
    with store.session() as s:
        edition = edition_for(s, list_id)
        editions.freeze(s, edition, CUTOFF - timedelta(minutes=30))
        assert edition.pool == ["before"]
    # Arrives after the freeze, though published before the cut-off (and one backdated into the window).
    add_article(store, "after", CUTOFF - timedelta(minutes=10), title=STORIES[1], topics=["y"])
    add_article(store, "backdated", CUTOFF - timedelta(hours=5), title=STORIES[2], topics=["z"])
    with store.session() as s:
        edition = edition_for(s, list_id)
        frozen_at = edition.frozen_at
        editions.freeze(s, edition, CUTOFF + timedelta(hours=3))  # idempotent: nothing changes
        assert edition.frozen_at == frozen_at and edition.pool == ["before"]
        assert [a.id for a in editions.candidate_pool(s, edition)] == ["before"]
        selection = editions.select_for(s, settings(), edition, ["y"])
        assert selection.article_ids == ["before"]
        assert {d.id: d.reason for d in selection.dropped} == {
            "after": "outside the window", "backdated": "outside the window"}
        assert selection.cutoff_at == CUTOFF - timedelta(minutes=30)


def test_record_sent_articles_is_idempotent(store: Store) -> None:
    list_id = add_list(store)
    with store.session() as s:
        edition = edition_for(s, list_id)
        editions.record_sent_articles(s, edition, ["a", "b", "a"])
    with store.session() as s:
        edition = edition_for(s, list_id)
        editions.record_sent_articles(s, edition, ["b", "c"])
        editions.record_sent_articles(s, edition, [])
    with store.session() as s:
        rows = s.execute(select(EditionArticleRow.article_id, EditionArticleRow.list_id)
                         .order_by(EditionArticleRow.article_id)).all()
        assert [tuple(r) for r in rows] == [("a", list_id), ("b", list_id), ("c", list_id)]


def _subscriber(s: Any, list_id: int, email: str, topics: list[str], status: str = "active",
                paused: bool = False) -> None:
    s.add(SubscriberRow(list_id=list_id, email=email, email_key=email, status=status, topics=topics,
                        paused=paused))


def test_variants_group_identical_selections(store: Store) -> None:
    list_id = add_list(store)
    for n in range(3):
        add_article(store, f"sport{n}", CUTOFF - timedelta(hours=5 + n), title=STORIES[n], topics=["sport"])
        add_article(store, f"culture{n}", CUTOFF - timedelta(hours=5 + n), title=STORIES[3 + n],
                    topics=["culture"])
    with store.session() as s:
        _subscriber(s, list_id, "ana@example.org", ["sport"])
        _subscriber(s, list_id, "ben@example.org", ["Sport"])  # same profile once normalized
        _subscriber(s, list_id, "cy@example.org", ["culture"])
        _subscriber(s, list_id, "dee@example.org", ["sport"], status="pending")
        _subscriber(s, list_id, "eve@example.org", ["culture"], paused=True)
    with store.session() as s:
        edition = edition_for(s, list_id)
        groups = editions.variants_for_list(s, settings(max_articles=3, max_per_topic=3), edition)
        assert [len(g.subscriber_ids) for g in groups] == [2, 1]
        assert groups[0].profiles == [("sport",)] and groups[1].profiles == [("culture",)]
        assert groups[0].selection.article_ids == ["sport0", "sport1", "sport2"]
        assert groups[1].selection.article_ids == ["culture0", "culture1", "culture2"]
        # Two different profiles whose selections come out the same share one variant.
        _subscriber(s, list_id, "fay@example.org", ["sport", "weather"])
        s.flush()
        groups = editions.variants_for_list(s, settings(max_articles=3, max_per_topic=3), edition)
        assert [len(g.subscriber_ids) for g in groups] == [3, 1]
        assert groups[0].profiles == [("sport",), ("sport", "weather")]


def test_variant_rows_are_created_once_per_selection(store: Store) -> None:
    list_id = add_list(store)
    for n in range(4):
        add_article(store, f"a{n}", CUTOFF - timedelta(hours=n + 1), title=STORIES[n], topics=[f"t{n}"])
    with store.session() as s:
        edition = edition_for(s, list_id)
        everyone = editions.select_for(s, settings(), edition, None)
        t3_first = editions.select_for(s, settings(), edition, ["t3"])
        first = editions.get_or_create_variant(s, edition, everyone)
        again = editions.get_or_create_variant(s, edition, everyone)
        other = editions.get_or_create_variant(s, edition, t3_first)
        assert first.id == again.id != other.id
        assert first.article_ids == ["a0", "a1", "a2", "a3"]
        assert other.article_ids[0] == "a3"
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(VariantRow)) == 2


def test_concurrent_get_or_create_edition_makes_one_row(store: Store) -> None:
    list_id = add_list(store)
    seen: dict[str, int] = {}
    errors: list[BaseException] = []

    def second_process() -> None:
        try:
            with store.session() as s:
                seen["b"] = edition_for(s, list_id).id
        except BaseException as exc:  # noqa: BLE001 - a thread's failure must reach the test's assertion
            errors.append(exc)

    with store.session() as s:
        seen["a"] = edition_for(s, list_id).id
        s.flush()
        other = threading.Thread(target=second_process)
        other.start()
        # Let the other session reach the row (PostgreSQL: blocked on the unique index; SQLite: on the lock).
        time.sleep(0.3)
    other.join(timeout=30)
    assert not errors, errors
    assert seen["a"] == seen["b"]
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(EditionRow)) == 1


def test_concurrent_get_or_create_variant_makes_one_row(store: Store) -> None:
    list_id = add_list(store)
    add_article(store, "a0", CUTOFF - timedelta(hours=1), title=STORIES[0])
    with store.session() as s:
        edition_id = edition_for(s, list_id).id
    seen: dict[str, int] = {}
    errors: list[BaseException] = []

    def make(name: str, hold: bool) -> None:
        try:
            with store.session() as s:
                edition = s.get(EditionRow, edition_id)
                assert edition is not None
                selection = editions.select_for(s, settings(), edition, None)
                seen[name] = editions.get_or_create_variant(s, edition, selection).id
                if hold:
                    time.sleep(0.3)
        except BaseException as exc:  # noqa: BLE001 - a thread's failure must reach the test's assertion
            errors.append(exc)

    first = threading.Thread(target=make, args=("a", True))
    first.start()
    time.sleep(0.1)
    make("b", False)
    first.join(timeout=30)
    assert not errors, errors
    assert seen["a"] == seen["b"]


def test_engagement_from_past_clicks_reorders_when_weighted(store: Store) -> None:
    list_id = add_list(store)
    add_article(store, "biz", CUTOFF - timedelta(hours=1), title=STORIES[0], topics=["business"])
    add_article(store, "arts", CUTOFF - timedelta(hours=3), title=STORIES[1], topics=["culture"])
    add_article(store, "old-arts", CUTOFF - timedelta(days=7), title=STORIES[2], topics=["culture"])
    with store.session() as s:
        last_week = edition_for(s, list_id, DAY - timedelta(days=7))
        for n, reader in enumerate(["a@example.org", "b@example.org"]):
            s.add(EventRow(provider="sendgrid", provider_event_id=f"click-{n}", type="clicked", email_key=reader,
                           edition_id=last_week.id, article_id="old-arts", occurred_at=CUTOFF - timedelta(days=6)))
    with store.session() as s:
        edition = edition_for(s, list_id)
        assert editions.select_for(s, settings(), edition, None).article_ids == ["biz", "arts"]
        weighted = editions.select_for(s, settings(weight_engagement=2.0), edition, None)
        assert weighted.article_ids == ["arts", "biz"]
        assert weighted.items[0].components["engagement"] == 2.0


def test_an_edition_remembers_the_stories_of_its_lists_last_days(store: Store) -> None:
    list_id = add_list(store)
    other_list = add_list(store, "weekly")
    ferry = "Harbour council approves new ferry timetable for the winter, with two late weekday ferries"
    add_article(store, "told", CUTOFF - timedelta(days=3, hours=2), title=ferry)
    add_article(store, "retold", CUTOFF - timedelta(hours=2), title=ferry.replace("the winter", "winter"))
    add_article(store, "fresh", CUTOFF - timedelta(hours=3), title=STORIES[1])
    add_article(store, "next-day", CUTOFF + timedelta(hours=20), title=ferry)
    with store.session() as s:
        # Sent three days ago by this list; another list's sends are not this list's memory.
        editions.record_sent_articles(s, edition_for(s, list_id, DAY - timedelta(days=3)), ["told"])
        editions.record_sent_articles(s, edition_for(s, other_list, DAY - timedelta(days=1)), ["fresh"])
        edition = edition_for(s, list_id)
        selection = editions.select_for(s, settings(), edition, None)
        assert selection.article_ids == ["fresh"]
        assert {d.id: d.reason for d in selection.dropped}["retold"] == "already sent as told"
        # A shorter memory has forgotten it; 0 turns the memory off.
        for days in (2, 0):
            assert editions.select_for(s, settings(story_memory_days=days), edition, None).article_ids == [
                "retold", "fresh"]
        # A later edition is not memory: only earlier dates count.
        later = edition_for(s, list_id, DAY + timedelta(days=1))
        assert editions.remembered_stories(s, later, 3).told == []
        editions.record_sent_articles(s, later, ["next-day"])
        assert [a.id for a in editions.remembered_stories(s, edition, 3).told] == ["told"]
        # A retracted story is forgotten, so its correction can go out.
        s.get(ArticleRow, "told").retracted_at = CUTOFF  # type: ignore[union-attr]
        s.flush()
        assert editions.select_for(s, settings(), edition, None).article_ids == ["retold", "fresh"]


def test_yesterdays_story_is_recognized_through_the_version_it_was_grouped_with(store: Store) -> None:
    """Yesterday the list sent the Gazette's version and left the Courier's out as its duplicate; today a third
    outlet copies the Courier's wording, which the Gazette's alone does not match. It is still the same story."""
    list_id = add_list(store)
    yesterday = CUTOFF - timedelta(days=1)
    gazette = "Harbour council approves new ferry timetable for winter, adding late ferries"
    courier = ("Harbour council approves winter ferry timetable: two late ferries on weekdays and a stop at the "
               "island school")
    copy = "Two late ferries on weekdays and a new stop at the island school from November"
    alike = {pair: similarity(*(terms(Article(id="x", title=text)) for text in pair))
             for pair in ((gazette, courier), (courier, copy), (gazette, copy))}
    assert [value >= settings().duplicate_threshold for value in alike.values()] == [True, True, False]
    add_article(store, "gazette", yesterday - timedelta(hours=2), title=gazette)
    add_article(store, "courier", yesterday - timedelta(hours=3), title=courier)
    add_article(store, "below-limit", yesterday - timedelta(hours=4), title=STORIES[2])
    add_article(store, "copy", CUTOFF - timedelta(hours=2), title=copy)
    add_article(store, "follow-up", CUTOFF - timedelta(hours=3), title=STORIES[2] + " in the spring")
    add_article(store, "fresh", CUTOFF - timedelta(hours=4), title=STORIES[1])
    with store.session() as s:
        monday = edition_for(s, list_id, DAY - timedelta(days=1))
        editions.freeze(s, monday, yesterday)
        assert sorted(monday.pool or []) == ["below-limit", "courier", "gazette"]
        editions.record_sent_articles(s, monday, ["gazette"])
        memory = editions.remembered_stories(s, edition_for(s, list_id), 3)
        assert [a.id for a in memory.told] == ["gazette"]
        assert sorted(a.id for a in memory.context) == ["below-limit", "courier"]
        selection = editions.select_for(s, settings(), edition_for(s, list_id), None)
        # A story left below the limit yesterday was never told: its follow-up is news.
        assert selection.article_ids == ["follow-up", "fresh"]
        assert {d.id: d.reason for d in selection.dropped}["copy"] == "already sent as gazette"
