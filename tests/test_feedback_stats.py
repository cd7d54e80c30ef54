"""Edition statistics on a constructed edition, pruning that keeps them equal, clicks per topic, and the CLI.

Rows are inserted directly (EditionRow / DeliveryRow / EventRow), so the expected numbers are known by
construction. Both databases.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.feedback.prune import prune
from digest.feedback.stats import COUNT_NAMES, clicks_per_topic, edition_stats, list_trend
from digest.store.db import Store
from digest.store.tables import DeliveryRow, EditionRow, EditionTotalsRow, EventRow, SendBatchRow
from tests.conftest import Project
from tests.feedback_support import World, build_world, settings_for

_ids = itertools.count(1)
T0 = datetime(2024, 5, 1, 7, tzinfo=UTC)


def event(session: Session, type_: str, who: str | None, edition_id: int | None, *, subscriber_id: int | None = None,
          article_id: str | None = None, at: datetime = T0) -> None:
    session.add(EventRow(provider="sendgrid", provider_event_id=f"e{next(_ids)}", type=type_,
                         email_key=f"{who}@example.org" if who else None, edition_id=edition_id,
                         subscriber_id=subscriber_id, article_id=article_id, payload={}, occurred_at=at))


def fill(session: Session, w: World) -> None:
    """Edition 0: 3 sent (+1 failed), alice and bob delivered, carol bounced, two unique openers and clickers."""
    e0, e1 = w.editions[0], w.editions[1]
    session.add(DeliveryRow(edition_id=e0, subscriber_id=99, email="dave@example.org", status="failed"))
    harbour, budget = w.articles["harbour"], w.articles["budget"]
    for who, kind, article in [
        ("alice", "delivered", None), ("bob", "delivered", None), ("carol", "bounced", None),
        ("alice", "opened", None), ("alice", "opened", None), ("bob", "opened", None),
        ("alice", "clicked", harbour), ("alice", "clicked", harbour), ("alice", "clicked", budget),
        ("bob", "clicked", harbour), ("alice", "clicked", None),
        ("bob", "complained", None), ("alice", "unsubscribed", None),
        ("alice", "queued", None), ("carol", "deferred", None),
    ]:
        event(session, kind, who, e0, article_id=article, subscriber_id=w.sub(f"{who}@daily"))
    # Edition 1: one delivery and one open, so the trend has two editions with data.
    event(session, "delivered", "bob", e1)
    event(session, "opened", "bob", e1)
    event(session, "clicked", "bob", e1, article_id=w.articles["derby"])
    # Not tied to any edition: counted nowhere, pruned by its own age.
    event(session, "delivered", "zed", None, at=T0 - timedelta(days=30))
    event(session, "delivered", "zed", None, at=datetime.now(UTC))


@pytest.fixture
def settings(tmp_path: Path, store: Store) -> Settings:
    return settings_for(tmp_path, store.url)


@pytest.fixture
def world(store: Store, settings: Settings) -> World:
    with store.session() as s:
        w = build_world(s, settings)
        fill(s, w)
    return w


EXPECTED = {"sent": 3, "delivered": 2, "bounced": 1, "complained": 1, "unsubscribed": 1, "opened": 2,
            "machine_opened": 0, "clicked": 2}


def test_stats_add_up_on_a_constructed_edition(store: Store, world: World) -> None:
    with store.session() as s:
        stats = edition_stats(s, world.editions[0])
    assert stats.counts == EXPECTED
    assert stats.rates == {"delivery_rate": 0.6667, "bounce_rate": 0.3333, "complaint_rate": 0.5,
                           "unsubscribe_rate": 0.5, "open_rate": 1.0, "click_rate": 1.0, "click_to_open_rate": 1.0}
    assert [(a.article_id, a.clickers, a.clicks) for a in stats.top_articles] == [
        (world.articles["harbour"], 2, 3), (world.articles["budget"], 1, 1)]
    assert stats.top_articles[0].title == "Harbour bridge reopens after repairs"
    data = stats.to_json()
    assert all(type(data[name]) is int for name in COUNT_NAMES)
    assert set(data["rates"]) >= {"open_rate", "click_rate"}


def test_an_edition_without_events_has_unknown_rates(store: Store, world: World) -> None:
    with store.session() as s:
        stats = edition_stats(s, world.editions[2])
    assert stats.counts == {**{name: 0 for name in COUNT_NAMES}, "sent": 3}
    assert stats.rates["open_rate"] is None and stats.rates["delivery_rate"] == 0.0


def test_trend_lists_editions_with_data_newest_first(store: Store, world: World) -> None:
    with store.session() as s:
        trend = list_trend(s, world.daily)
        assert [e.edition_id for e in trend] == [world.editions[2], world.editions[1], world.editions[0]]
        assert [e.counts["opened"] for e in trend] == [0, 1, 2]
        assert [e.edition_id for e in list_trend(s, world.daily, last=1)] == [world.editions[2]]
        assert list_trend(s, world.weekly) == []


def test_clicks_per_topic_is_normalized_for_ranking(store: Store, world: World) -> None:
    with store.session() as s:
        topics = clicks_per_topic(s, world.daily)
        assert topics == {"local": 1.0, "transport": 1.0, "politics": 0.5, "sports": 0.5}
        assert clicks_per_topic(s, world.weekly) == {}
        assert clicks_per_topic(s, world.daily, since=T0 + timedelta(days=1)) == {}


def _everything(s: Session, w: World) -> Any:
    return ([edition_stats(s, e).to_json() for e in w.editions], [e.to_json() for e in list_trend(s, w.daily)],
            clicks_per_topic(s, w.daily))


def test_prune_folds_counts_so_stats_stay_equal(store: Store, world: World) -> None:
    with store.session() as s:
        before = _everything(s, world)
        events_before = s.scalar(select(func.count()).select_from(EventRow))
    now = datetime(2024, 5, 11, 6, tzinfo=UTC)
    with store.session() as s:
        dry = prune(s, older_than_days=9, now=now, dry_run=True)
    # 15 events of edition 0, plus the month-old event tied to no edition.
    assert (dry.editions, dry.events, dry.deliveries) == (1, 16, 4)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(EventRow)) == events_before
        assert s.scalar(select(func.count()).select_from(EditionTotalsRow)) == 0
    # Cut-off 2024-05-02 06:00: edition 0 goes, edition 1 (cut off exactly then) stays.
    with store.session() as s:
        report = prune(s, older_than_days=9, now=now)
    assert (report.editions, report.events, report.deliveries) == (1, 16, 4)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(EventRow).where(EventRow.edition_id == world.editions[0])) == 0
        assert s.scalar(select(func.count()).select_from(DeliveryRow)
                        .where(DeliveryRow.edition_id == world.editions[0])) == 0
        assert _everything(s, world) == before
    # Everything older than a day: the other editions go too; the recent edition-less event stays.
    with store.session() as s:
        rest = prune(s, older_than_days=1, now=datetime.now(UTC))
    assert (rest.editions, rest.events, rest.deliveries) == (2, 3, 6)
    with store.session() as s:
        assert _everything(s, world) == before
        assert s.scalar(select(func.count()).select_from(EventRow)) == 1
    with store.session() as s:
        again = prune(s, older_than_days=1, now=datetime.now(UTC))
    assert (again.editions, again.events, again.deliveries) == (0, 0, 0)
    # A straggler event for a pruned edition still counts, on top of the folded totals.
    with store.session() as s:
        event(s, "opened", "carol", world.editions[0])
    with store.session() as s:
        assert edition_stats(s, world.editions[0]).counts["opened"] == 3


def _batches(s: Session, edition_id: int | None = None) -> list[str]:
    query = select(SendBatchRow.status).order_by(SendBatchRow.id)
    if edition_id is not None:
        query = query.where(SendBatchRow.edition_id == edition_id)
    return list(s.scalars(query))


def test_prune_takes_the_send_batches_and_spares_an_edition_still_sending(store: Store, world: World) -> None:
    e0, e1, e2 = world.editions
    with store.session() as s:
        for edition_id in (e0, e1):
            s.add_all([SendBatchRow(edition_id=edition_id, status="done") for _ in range(2)])
        # Edition 2 is being sent again (a resume, say): a worker holds one batch, one is open, one reader waits.
        s.add_all([SendBatchRow(edition_id=e2, status="claimed", holder="host:1:a"),
                   SendBatchRow(edition_id=e2, status="open")])
        s.add(DeliveryRow(edition_id=e2, subscriber_id=98, email="erin@example.org", status="pending"))
        edition = s.get(EditionRow, e2)
        assert edition is not None
        edition.status = "sending"
    with store.session() as s:
        dry = prune(s, older_than_days=1, dry_run=True)
        assert len(_batches(s)) == 6
    assert (dry.editions, dry.deliveries, dry.batches) == (2, 7, 4)
    with store.session() as s:
        report = prune(s, older_than_days=1)
    assert (report.editions, report.deliveries, report.batches) == (2, 7, 4)
    assert report.to_json()["batches"] == 4
    with store.session() as s:
        assert _batches(s) == ["claimed", "open"] == _batches(s, e2)
        assert s.scalar(select(func.count()).select_from(DeliveryRow).where(DeliveryRow.edition_id == e2)) == 4
        assert s.scalar(select(func.count()).select_from(DeliveryRow)) == 4
    # Once that send is over, the next prune takes the edition whole, batches included.
    with store.session() as s:
        s.query(DeliveryRow).filter(DeliveryRow.edition_id == e2).update({"status": "sent"})
        s.query(SendBatchRow).update({"status": "done", "holder": None})
        edition = s.get(EditionRow, e2)
        assert edition is not None
        edition.status = "sent"
    with store.session() as s:
        later = prune(s, older_than_days=1)
    assert (later.editions, later.deliveries, later.batches) == (1, 4, 2)
    # A batch an earlier prune left behind (its rows long gone) is taken too.
    with store.session() as s:
        s.add(SendBatchRow(edition_id=e0, status="done"))
    with store.session() as s:
        leftover = prune(s, older_than_days=1)
    assert (leftover.editions, leftover.deliveries, leftover.batches) == (1, 0, 1)
    with store.session() as s:
        assert _batches(s) == []


# --- the CLI ------------------------------------------------------------------------------------------------


@pytest.fixture
def cli_world(project: Project) -> World:
    app = project.app()
    try:
        with app.store.session() as s:
            w = build_world(s, app.settings)
            fill(s, w)
        return w
    finally:
        app.close()


def test_stats_json_has_plain_integer_counts_and_separate_rates(project: Project, cli_world: World) -> None:
    data = project.json("stats", "--list", "daily")
    assert data["list"] == "daily"
    assert [e["edition_id"] for e in data["editions"]] == cli_world.editions[::-1]
    oldest = data["editions"][-1]
    assert {name: oldest[name] for name in COUNT_NAMES} == EXPECTED
    assert all(type(oldest[name]) is int for name in COUNT_NAMES)
    assert oldest["rates"]["open_rate"] == 1.0 and oldest["rates"]["bounce_rate"] == 0.3333
    assert oldest["top_articles"][0]["article_id"] == cli_world.articles["harbour"]
    one = project.json("stats", "--edition", str(cli_world.editions[0]))
    assert one["editions"] == [oldest]
    # Without --list: default_list, which is "daily" here.
    assert project.json("stats", "--last", "1")["editions"] == data["editions"][:1]


def test_stats_human_output_shows_the_trend_and_top_articles(project: Project, cli_world: World) -> None:
    wide = {"COLUMNS": "200"}  # rich wraps to the terminal; the test is about content, not wrapping
    out = project.run("stats", env=wide).stdout
    assert "List daily" in out and "open%" in out and "2024-05-01" in out and "machine" in out
    assert "Harbour bridge reopens" not in out  # top articles of the newest edition, which had no clicks
    detail = project.run("stats", "--edition", str(cli_world.editions[0]), env=wide).stdout
    assert "Harbour bridge reopens" in detail and "complained" in detail and "33.3%" in detail
    assert "machine_opened" in detail


def test_stats_errors_name_what_is_missing(project: Project, cli_world: World) -> None:
    missing_list = project.run("stats", "--list", "nosuch", ok=False)
    assert missing_list.exit_code != 0 and "nosuch" in missing_list.stderr
    missing_edition = project.run("stats", "--edition", "424242", ok=False)
    assert missing_edition.exit_code != 0 and "424242" in missing_edition.stderr
    wrong_list = project.run("stats", "--edition", str(cli_world.editions[0]), "--list", "weekly", ok=False)
    assert wrong_list.exit_code != 0 and "daily" in wrong_list.stderr


def test_db_prune_keeps_stats_equal(project: Project, cli_world: World) -> None:
    before = project.json("stats", "--list", "daily")
    app = project.app()
    try:
        with app.store.session() as s:
            s.add_all([SendBatchRow(edition_id=edition_id, status="done") for edition_id in cli_world.editions])
    finally:
        app.close()
    dry = project.json("db", "prune", "--older-than-days", "1", "--dry-run")
    assert dry["dry_run"] is True and (dry["editions"], dry["deliveries"], dry["batches"]) == (3, 10, 3)
    assert project.json("stats", "--list", "daily") == before
    done = project.json("db", "prune", "--older-than-days", "1")
    assert (done["editions"], done["events"], done["deliveries"], done["batches"]) == (3, dry["events"], 10, 3)
    assert project.json("stats", "--list", "daily") == before
    app = project.app()
    try:
        with app.store.session() as s:
            assert _batches(s) == []
    finally:
        app.close()
    # retention_days (400 by default) keeps these 2024 editions' (already folded) totals untouched.
    out = project.run("db", "prune").stdout
    assert "Removed 0 event(s), 0 delivery row(s) and 0 send batch(es)" in out
    assert project.run("db", "prune", "--older-than-days", "0", ok=False).exit_code != 0
