"""Scheduler passes against the real store (SQLite and PostgreSQL) and the real send path (file backend)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from digest.schedule.runner import run_due
from digest.store.articles import list_articles, upsert_article
from digest.store.tables import EditionRow, LeaseRow, VariantRow

from .conftest import Project
from .schedule_support import add_articles, add_reader, deliveries, make_list, outbox_counts, runs

D = date(2026, 3, 10)
JOINED = datetime(2026, 3, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_readers_around_the_world_get_one_edition_at_their_own_morning(project: Project) -> None:
    app = project.app()
    make_list(app, "world", "Europe/Paris", "07:00")
    paris = add_reader(app, "world", 1, active_since=JOINED)  # the list's zone
    auckland = add_reader(app, "world", 2, tz="Pacific/Auckland", active_since=JOINED)
    new_york = add_reader(app, "world", 3, tz="America/New_York", active_since=JOINED)
    kolkata = add_reader(app, "world", 4, tz="Asia/Kolkata", active_since=JOINED)
    first = add_articles(app, utc(2026, 3, 9, 18, 0))
    expected = [  # each reader's 07:00 on 10 March, in UTC
        (utc(2026, 3, 9, 18, 0), auckland),  # NZDT
        (utc(2026, 3, 10, 1, 30), kolkata),
        (utc(2026, 3, 10, 6, 0), paris),  # CET
        (utc(2026, 3, 10, 11, 0), new_york),  # EDT since 8 March
    ]
    try:
        assert run_due(app, utc(2026, 3, 9, 17, 59)).items == []
        later = None
        for at, reader in expected:
            report = run_due(app, at)
            assert [(i.list_name, i.date, i.action, i.due, i.sent) for i in report.items] == [
                ("world", D, "send", 1, 1)], at
            assert deliveries(app)[-1] == ("world", D, reader, "sent")
            assert run_due(app, at + timedelta(minutes=1)).items == []  # once
            if later is None:  # an article that arrives after the first delivery waits for the next edition
                later = add_articles(app, utc(2026, 3, 10, 5, 0), n=1, prefix="late")
        assert sorted(outbox_counts(project.root).items()) == sorted((r, 1) for _, r in expected)
        assert {d for _, d, _, _ in deliveries(app)} == {D}
        with app.store.session() as s:
            edition = s.scalar(select(EditionRow))
            assert edition is not None and edition.date == D
            assert edition.frozen_at == utc(2026, 3, 9, 18, 0)
            assert sorted(edition.pool or []) == sorted(first) and later and later[0] not in (edition.pool or [])
            assert len(s.scalars(select(VariantRow)).all()) == 1  # the same edition for everyone
            assert s.scalars(select(LeaseRow)).all() == []  # every lease given back
        assert runs(app) == {("world", D): "sent"}
    finally:
        app.close()


def test_down_scheduler_catches_up_once_then_skips_what_is_too_old(project: Project) -> None:
    app = project.app()
    make_list(app, "morning", "America/New_York", "07:00")
    reader = add_reader(app, "morning", 1, active_since=JOINED)
    add_articles(app, utc(2026, 3, 10, 11, 0))
    try:
        # Down from before the 10th's 07:00 EDT (11:00Z) until 14:00Z: one pass catches up, the next does nothing.
        report = run_due(app, utc(2026, 3, 10, 14, 0))
        assert [(i.date, i.sent) for i in report.items] == [(D, 1)]
        assert run_due(app, utc(2026, 3, 10, 14, 1)).items == []
        # Down again through the whole of the 11th's catch-up window: that day is skipped, not sent late.
        add_articles(app, utc(2026, 3, 11, 11, 0), prefix="next")
        assert run_due(app, utc(2026, 3, 11, 17, 1)).items == []
        assert deliveries(app) == [("morning", D, reader, "sent")]
    finally:
        app.close()


def test_newcomer_gets_no_backlog_and_paused_or_pending_readers_nothing(project: Project) -> None:
    app = project.app()
    make_list(app, "daily", "UTC", "07:00")
    old = add_reader(app, "daily", 1, active_since=JOINED)
    add_reader(app, "daily", 2, active_since=utc(2026, 3, 10, 7, 30))  # joined after today's send
    add_reader(app, "daily", 3, active_since=JOINED, status="pending")
    add_articles(app, utc(2026, 3, 10, 7, 0))
    try:
        report = run_due(app, utc(2026, 3, 10, 8, 0))  # catching up on today's 07:00
        assert [(i.due, i.sent) for i in report.items] == [(1, 1)]
        assert deliveries(app) == [("daily", D, old, "sent")]
    finally:
        app.close()


def test_weekday_schedule_sends_nothing_at_the_weekend(project: Project) -> None:
    app = project.app()
    make_list(app, "weekdays", "Europe/Paris", "07:00", schedule="0 7 * * 1-5")
    add_reader(app, "weekdays", 1, active_since=JOINED)
    add_articles(app, utc(2026, 3, 14, 6, 0))
    try:
        assert run_due(app, utc(2026, 3, 14, 6, 0)).items == []  # Saturday 07:00 Paris
        assert run_due(app, utc(2026, 3, 15, 6, 0)).items == []  # Sunday
        add_articles(app, utc(2026, 3, 16, 6, 0), prefix="mon")
        assert [(i.date, i.sent) for i in run_due(app, utc(2026, 3, 16, 6, 0)).items] == [(date(2026, 3, 16), 1)]
    finally:
        app.close()


def test_approval_gate_builds_waits_sends_after_approval_and_skips_when_late(project: Project) -> None:
    app = project.app()
    make_list(app, "desk", "Europe/Paris", "07:00", approval=True)
    reader = add_reader(app, "desk", 1, active_since=JOINED)
    add_articles(app, utc(2026, 3, 10, 6, 0))
    try:
        report = run_due(app, utc(2026, 3, 10, 6, 0))
        assert [(i.action, i.due) for i in report.items] == [("build", 1)]
        edition_id = report.items[0].edition_id
        assert edition_id is not None
        assert deliveries(app) == [] and runs(app) == {("desk", D): "awaiting_approval"}
        with app.store.session() as s:
            edition = s.get(EditionRow, edition_id)
            assert edition is not None and edition.frozen_at == utc(2026, 3, 10, 6, 0)  # what the editor sees
        shown = project.json("editions", "show", str(edition_id))  # the editor's preview, before approval
        assert shown["preview"]["article_ids"] and shown["variants"] == [] and shown["counts"] == {}
        assert [a["id"] for a in shown["articles"]] == shown["preview"]["article_ids"]
        assert all(a["title"] and not a["delivered"] for a in shown["articles"])
        assert "not planned yet" in project.run("editions", "show", str(edition_id)).output
        assert [i.action for i in run_due(app, utc(2026, 3, 10, 6, 30)).items] == ["await_approval"]
        assert deliveries(app) == []

        out = project.json("editions", "approve", str(edition_id), "--by", "night editor")
        assert out["changed"] and out["approved_by"] == "night editor"
        assert not project.json("editions", "approve", str(edition_id))["changed"]  # idempotent
        report = run_due(app, utc(2026, 3, 10, 7, 0))
        assert [(i.action, i.sent) for i in report.items] == [("send", 1)]
        assert deliveries(app) == [("desk", D, reader, "sent")]

        # The next day nobody approves: built at 06:00Z, skipped once catch_up_hours (6) have passed.
        add_articles(app, utc(2026, 3, 11, 6, 0), prefix="wed")
        built = run_due(app, utc(2026, 3, 11, 6, 0)).items[0]
        assert built.action == "build"
        assert [i.action for i in run_due(app, utc(2026, 3, 11, 12, 0)).items] == ["await_approval"]
        assert [i.action for i in run_due(app, utc(2026, 3, 11, 12, 1)).items] == ["skip_unapproved"]
        assert run_due(app, utc(2026, 3, 11, 12, 2)).items == []  # reported once
        assert runs(app)[("desk", date(2026, 3, 11))] == "skipped_unapproved"
        result = project.run("editions", "approve", str(built.edition_id), ok=False)
        assert result.exit_code != 0 and "was skipped" in result.stderr
        assert len(deliveries(app)) == 1
    finally:
        app.close()


def test_dry_run_changes_nothing(project: Project) -> None:
    app = project.app()
    make_list(app, "daily", "UTC", "07:00")
    add_reader(app, "daily", 1, active_since=JOINED)
    add_articles(app, utc(2026, 3, 10, 7, 0))
    try:
        report = run_due(app, utc(2026, 3, 10, 7, 0), dry_run=True)
        assert [(i.action, i.due, i.sent) for i in report.items] == [("send", 1, 0)]
        assert deliveries(app) == [] and runs(app) == {}
        with app.store.session() as s:
            assert s.scalars(select(EditionRow)).all() == []
    finally:
        app.close()


def test_an_empty_edition_waits_while_its_window_is_open_then_is_skipped_once(project: Project) -> None:
    app = project.app()
    make_list(app, "quiet", "America/New_York", "07:00")  # cut-off 11:00Z on 10 March (EDT)
    add_reader(app, "quiet", 1, tz="Pacific/Auckland", active_since=JOINED)  # due at 18:00Z on the 9th
    add_reader(app, "quiet", 2, active_since=JOINED)  # due at the cut-off
    try:
        # Auckland's morning comes before the list's cut-off: nothing to send yet, but the day stays open.
        early = run_due(app, utc(2026, 3, 9, 18, 0))
        assert [(i.action, i.sent) for i in early.items] == [("waiting", 0)] and early.errors == []
        assert runs(app) == {("quiet", D): "empty"}
        # At the cut-off the window is closed and still empty: skipped for good, reported once, no error.
        report = run_due(app, utc(2026, 3, 10, 11, 0))
        assert [i.action for i in report.items] == ["skipped"] and report.errors == []
        assert runs(app) == {("quiet", D): "skipped"}
        assert run_due(app, utc(2026, 3, 10, 11, 1)).items == []
        assert deliveries(app) == []
    finally:
        app.close()


def test_a_day_of_only_retold_stories_is_skipped_and_says_why(project: Project) -> None:
    app = project.app()
    make_list(app, "desk", "Europe/Paris", "07:00")
    reader = add_reader(app, "desk", 1, active_since=JOINED)
    # Three: all of them fit under the topic cap, so the list sends every one.
    told = add_articles(app, utc(2026, 3, 10, 6, 0), n=3)
    try:
        assert [i.action for i in run_due(app, utc(2026, 3, 10, 6, 0)).items] == ["send"]
        # The next morning brings only another paper's copies of the stories the list sent yesterday.
        with app.store.session() as s:
            for article in list_articles(s, ids=told):
                upsert_article(s, replace(article, id=f"copy-{article.id}", outlet="The Other Example Paper",
                                          url=f"https://other.example.org/{article.id}",
                                          published_at=article.published_at + timedelta(days=1)))
        report = run_due(app, utc(2026, 3, 11, 6, 0))
        assert [i.action for i in report.items] == ["skipped"] and report.errors == []
        assert f"the {len(told)} article(s) in its window all retell stories the list already sent" in (
            report.items[0].detail or "")
        assert deliveries(app) == [("desk", D, reader, "sent")]
    finally:
        app.close()


def test_an_approval_list_with_nothing_to_approve_waits_instead_of_freezing_an_empty_edition(
        project: Project) -> None:
    app = project.app()
    make_list(app, "desk", "America/New_York", "07:00", approval=True)  # cut-off 11:00Z on 10 March (EDT)
    add_reader(app, "desk", 1, tz="Pacific/Auckland", active_since=JOINED)  # due at 18:00Z on the 9th
    try:
        early = run_due(app, utc(2026, 3, 9, 18, 0))
        assert [i.action for i in early.items] == ["waiting"] and early.errors == []
        with app.store.session() as s:
            edition = s.scalar(select(EditionRow))
            assert edition is not None and edition.frozen_at is None  # still open to what arrives
        arrived = add_articles(app, utc(2026, 3, 9, 20, 0))
        built = run_due(app, utc(2026, 3, 9, 20, 0))
        assert [i.action for i in built.items] == ["build"]
        with app.store.session() as s:
            edition = s.scalar(select(EditionRow))
            assert edition is not None and sorted(edition.pool or []) == sorted(arrived)
        assert runs(app) == {("desk", D): "awaiting_approval"}
    finally:
        app.close()


def test_both_dst_transitions_send_once_through_the_store(project: Project) -> None:
    """02:30 in Paris: on 29 March 2026 it does not exist (sent at 03:00 CEST), on 25 October 2026 it happens
    twice (sent at the first). Passes every 15 minutes across each whole day send exactly once."""
    app = project.app()
    make_list(app, "night", "Europe/Paris", "02:30")
    reader = add_reader(app, "night", 1, active_since=JOINED)
    try:
        for day, expected in [(date(2026, 3, 29), utc(2026, 3, 29, 1, 0)), (date(2026, 10, 25), utc(2026, 10, 25, 0, 30))]:
            add_articles(app, expected - timedelta(minutes=5), prefix=f"dst{day:%m}")
            sent_at = []
            at = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=3)
            while at < datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=23):
                if run_due(app, at).sent:
                    sent_at.append(at)
                at += timedelta(minutes=15)
            assert sent_at == [expected], day
        assert [(d, sid, status) for _, d, sid, status in deliveries(app)] == [
            (date(2026, 3, 29), reader, "sent"), (date(2026, 10, 25), reader, "sent")]
    finally:
        app.close()
