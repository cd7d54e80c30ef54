"""Ranking, editions and the scheduler where they meet: the reader a selection is for, who receives editions,
why articles were left out, and how a scheduler pass reports a list it cannot work on.

All lists, articles and addresses here are fictional.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Self

import pytest
from sqlalchemy import select

from digest import editions
from digest.audience.lists import ensure_list, new_list_row
from digest.models import Article
from digest.rank.select import (
    ALREADY_SENT,
    BELOW_LIMIT,
    DUPLICATE,
    OUTSIDE_WINDOW,
    RETOLD,
    TOPIC_CAP,
    already_sent_as,
    duplicate_of,
    reason_kind,
)
from digest.render.build import pick_subscriber
from digest.schedule import runner
from digest.schedule.lease import Lease
from digest.schedule.runner import run_due
from digest.store.articles import upsert_article
from digest.store.db import Store
from digest.store.tables import MailingListRow, SubscriberRow
from tests.rank_support import STORIES, settings

from .conftest import Project
from .schedule_support import add_articles, add_reader, deliveries, make_list

CUTOFF = datetime(2031, 3, 4, 7, 0, tzinfo=UTC)  # a list's 07:00 UTC send time
DAY = date(2031, 3, 4)
JOINED = datetime(2026, 3, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _add_list(store: Store, name: str = "daily", **kw: Any) -> int:
    with store.session() as s:
        row = new_list_row(settings(), name, **kw)
        s.add(row)
        s.flush()
        return row.id


def _add_article(store: Store, article_id: str, at: datetime, title: str, topics: list[str]) -> None:
    with store.session() as s:
        upsert_article(s, Article(id=article_id, title=title, outlet="Fictional Daily", published_at=at,
                                  topics=topics))


def _subscriber(s: Any, list_id: int, email: str, topics: list[str], *, paused: bool = False) -> None:
    s.add(SubscriberRow(list_id=list_id, email=email, email_key=email, status="active", topics=topics,
                        paused=paused))


# --- whom select_for ranks for ------------------------------------------------------------------------------


def test_select_for_without_topics_is_what_a_subscriber_without_topics_gets(store: Store) -> None:
    list_id = _add_list(store, topics=["Arts"])
    _add_article(store, "sport", CUTOFF - timedelta(hours=1), STORIES[0], ["sport"])
    _add_article(store, "arts", CUTOFF - timedelta(hours=3), STORIES[1], ["arts"])
    with store.session() as s:
        _subscriber(s, list_id, "no-topics@example.org", [])
        _subscriber(s, list_id, "sport-fan@example.org", ["sport"])
    with store.session() as s:
        list_row = s.get(MailingListRow, list_id)
        assert list_row is not None
        edition = editions.get_or_create_edition(s, settings(), list_row, DAY)
        groups = editions.variants_for_list(s, settings(), edition)
        reader = next(g for g in groups if ("arts",) in g.profiles)
        # What an editor previews, the approval build freezes and the thin-day check judges.
        unnamed = editions.select_for(s, settings(), edition, None)
        assert unnamed.article_ids == reader.selection.article_ids == ["arts", "sport"]
        assert editions.select_for(s, settings(), edition, []).article_ids == ["arts", "sport"]
        # Callers that already pass effective preferences get the same selection (applying them is idempotent).
        effective = editions.effective_preferences(None, list_row.topics)
        assert editions.select_for(s, settings(), edition, effective).article_ids == ["arts", "sport"]
        # A reader's own topics (or `digest rank --topics`) still override the list's.
        assert editions.select_for(s, settings(), edition, ["sport"]).article_ids == ["sport", "arts"]


def test_build_picks_the_first_subscriber_who_receives_editions(store: Store) -> None:
    list_id = _add_list(store)
    with store.session() as s:
        _subscriber(s, list_id, "paused@example.org", [], paused=True)
        _subscriber(s, list_id, "reading@example.org", [])
    with store.session() as s:
        list_row = s.get(MailingListRow, list_id)
        assert list_row is not None
        picked = pick_subscriber(s, list_row, None)
        assert picked is not None and picked.email == "reading@example.org"
        # Named explicitly, a paused subscriber is still shown as asked.
        named = pick_subscriber(s, list_row, "paused@example.org")
        assert named is not None and named.paused


# --- why articles were left out -----------------------------------------------------------------------------


def test_each_dropped_reason_has_its_kind() -> None:
    assert [reason_kind(r) for r in (duplicate_of("a1"), already_sent_as("a2"), ALREADY_SENT, OUTSIDE_WINDOW,
                                      TOPIC_CAP, BELOW_LIMIT)] == [
        DUPLICATE, RETOLD, ALREADY_SENT, OUTSIDE_WINDOW, TOPIC_CAP, BELOW_LIMIT]
    # An article id containing " as " or " of " is not part of the kind.
    assert reason_kind(duplicate_of("sent as of today")) == DUPLICATE


def test_rank_counts_a_retelling_as_retold_not_as_already_sent(project: Project) -> None:
    ferry = "Harbour council approves new ferry timetable for the winter, with two late weekday ferries"
    app = project.app()
    try:
        with app.store.session() as s:
            list_row = ensure_list(s, app.settings)
            upsert_article(s, Article(id="told", title=ferry, outlet="Fictional Gazette",
                                      published_at=CUTOFF - timedelta(days=3, hours=2), topics=["local"]))
            upsert_article(s, Article(id="retold", title=ferry.replace("the winter", "winter"),
                                      outlet="Fictional Courier", published_at=CUTOFF - timedelta(hours=2),
                                      topics=["local"]))
            upsert_article(s, Article(id="fresh", title=STORIES[1], outlet="Fictional Gazette",
                                      published_at=CUTOFF - timedelta(hours=3), topics=["culture"]))
            earlier = editions.get_or_create_edition(s, app.settings, list_row, DAY - timedelta(days=3))
            editions.record_sent_articles(s, earlier, ["told"])
    finally:
        app.close()
    out = project.run("rank", "--date", DAY.isoformat()).stdout
    assert "Left out: 1 retold" in out and "already sent" not in out


# --- the scheduler --------------------------------------------------------------------------------------------


def _break_timezone(project: Project, name: str) -> None:
    # As a list row can hold a zone the tz database later dropped, or one written around the CLI's checks.
    app = project.app()
    try:
        with app.store.session() as s:
            row = s.scalar(select(MailingListRow).where(MailingListRow.name == name))
            assert row is not None
            row.timezone = "Mars/Olympus_Mons"
    finally:
        app.close()


def _lists_one_broken(project: Project) -> int:
    """Two lists due at 07:00 UTC on 10 March, "broken" with a zone that no longer exists; the "fine" reader's id."""
    app = project.app()
    try:
        make_list(app, "broken", "Europe/Paris")
        make_list(app, "fine", "UTC")
        add_reader(app, "broken", 1, active_since=JOINED)
        reader = add_reader(app, "fine", 2, active_since=JOINED)
        add_articles(app, utc(2026, 3, 10, 7, 0))
    finally:
        app.close()
    _break_timezone(project, "broken")
    return reader


BROKEN = "list 'broken': timezone: 'Mars/Olympus_Mons' is not an IANA time zone"


def test_a_dry_run_reports_a_list_with_a_bad_zone_and_still_plans_the_others(project: Project) -> None:
    _lists_one_broken(project)
    app = project.app()
    try:
        dry = run_due(app, utc(2026, 3, 10, 7, 0), dry_run=True)
        assert [(i.list_name, i.action, i.due) for i in dry.items] == [("fine", "send", 1)]
        assert len(dry.errors) == 1 and dry.errors[0].startswith(BROKEN)
        assert deliveries(app) == []
    finally:
        app.close()
    cli = project.run("schedule", "due", "--dry-run", "--now", "2026-03-10T07:00:00Z", ok=False)
    assert cli.exit_code != 0 and BROKEN in cli.output and "fine" in cli.output


def test_a_pass_names_a_failing_list_once(project: Project) -> None:
    reader = _lists_one_broken(project)
    app = project.app()
    try:
        real = run_due(app, utc(2026, 3, 10, 7, 0))
        assert len(real.errors) == 1 and real.errors[0].startswith(BROKEN)
        assert real.errors[0].count("broken") == 1
        assert [(i.list_name, i.sent) for i in real.items] == [("fine", 1)]
        assert deliveries(app) == [("fine", date(2026, 3, 10), reader, "sent")]
    finally:
        app.close()


def test_a_pass_stops_working_a_list_whose_lease_was_lost(project: Project,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    class LostAtOnce(Lease):
        def __enter__(self) -> Self:
            super().__enter__()
            self.lost = True  # what the heartbeat sets once another scheduler has taken the lease over
            return self

    app = project.app()
    make_list(app, "morning", "UTC")
    reader = add_reader(app, "morning", 1, active_since=JOINED)
    add_articles(app, utc(2026, 3, 10, 7, 0))
    try:
        monkeypatch.setattr(runner, "Lease", LostAtOnce)
        lost = run_due(app, utc(2026, 3, 10, 7, 0))
        assert lost.items == [] and lost.busy == ["morning"] and lost.errors == []
        assert deliveries(app) == []
        monkeypatch.setattr(runner, "Lease", Lease)
        kept = run_due(app, utc(2026, 3, 10, 7, 1))
        assert [(i.list_name, i.sent) for i in kept.items] == [("morning", 1)]
        assert deliveries(app) == [("morning", date(2026, 3, 10), reader, "sent")]
    finally:
        app.close()


# --- `digest editions ls` -----------------------------------------------------------------------------------


def test_editions_ls_refuses_a_list_that_does_not_exist(project: Project) -> None:
    unknown = project.run("editions", "ls", "--list", "nope", ok=False)
    assert unknown.exit_code != 0 and "no list named 'nope'" in unknown.output
    app = project.app()
    try:
        with app.store.session() as s:
            ensure_list(s, app.settings)
    finally:
        app.close()
    assert project.json("editions", "ls", "--list", app.settings.default_list) == []


def test_stats_help_says_unsubscribes_through_digests_own_link_count_for_every_backend(project: Project) -> None:
    help_text = " ".join(project.run("stats", "--help").stdout.split())
    assert "an SMTP or file send has only `sent` and those `unsubscribed`" in help_text
