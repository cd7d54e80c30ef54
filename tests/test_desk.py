"""The editor's desk as a library and as commands, on SQLite and PostgreSQL: pin, leave out, move, add, leave
out everywhere, approve; every selection (rank, build, send) sees them; audit entries; refusal once sent.

Every article, subscriber and address here is fictional.
"""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlalchemy import select

from digest import editions
from digest.audience.lists import ensure_list
from digest.desk import actions
from digest.desk.actions import DeskRefused
from digest.desk.overrides import LEFT_OUT
from digest.desk.view import desk_view
from digest.send.dispatch import send_edition
from digest.store.tables import ArticleRow, EditionArticleRow, EditionRow
from tests.conftest import Project
from tests.desk_support import CONFIG, desk_audit, seed, selection_ids


@pytest.fixture
def newsroom(project: Project):  # type: ignore[no-untyped-def]
    project.write_config(CONFIG)
    return seed(project.app())


def test_ranking_alone_takes_the_freshest_four(newsroom) -> None:  # type: ignore[no-untyped-def]
    assert selection_ids(newsroom.app, newsroom.day) == ["d1", "d2", "d3", "d4"]


def test_each_action_changes_every_selection_of_the_edition_and_is_audited(newsroom) -> None:  # type: ignore[no-untyped-def]
    app, day, now = newsroom.app, newsroom.day, newsroom.now
    s = app.settings
    with app.store.session() as session:
        change = actions.pin(session, s, None, day, "d3", by="Ada Editor", now=now)
    assert change.changed and change.action == "pin"
    assert selection_ids(app, day) == ["d3", "d1", "d2", "d4"]

    with app.store.session() as session:
        actions.leave_out(session, s, None, day, "d2", reason="  weak   sourcing ", by="Ada Editor", now=now)
    # The next story fills the place; the reason is kept in the edition's record.
    assert selection_ids(app, day) == ["d3", "d1", "d4", "d5"]
    with app.store.session() as session:
        view = desk_view(session, s, None, day, now=now, with_subject=False)
    left = {c.id: c for c in view.candidates}
    assert left["d2"].left_out and left["d2"].reason == f"{LEFT_OUT}: weak sourcing"
    assert left["d6"].reason == "below the limit" and not left["d6"].left_out

    with app.store.session() as session:
        actions.move(session, s, None, day, "d5", "up", by="Bo Editor", now=now)
    assert selection_ids(app, day) == ["d3", "d1", "d5", "d4"]

    with app.store.session() as session:
        actions.add(session, s, None, day, "d6", by="Bo Editor", now=now)
    # Added at the place its score gives it (last: the oldest); the bottom story of the editor's order, d4,
    # makes room, not d5, which the editor just moved up.
    ids = selection_ids(app, day)
    assert ids == ["d3", "d1", "d5", "d6"]

    # Every reader's variant sees the same overrides (the send path: variants_for_list and the planner).
    with app.store.session() as session:
        edition = editions.get_or_create_edition(session, s, ensure_list(session, s), day)
        groups = editions.variants_for_list(session, s, edition)
    assert [g.selection.article_ids for g in groups] == [ids]

    entries = desk_audit(app)
    assert [(a, by) for a, by, _ in entries] == [("pin", "Ada Editor"), ("leave-out", "Ada Editor"),
                                                ("move-up", "Bo Editor"), ("add", "Bo Editor")]
    assert "d2 (Senate committee questions water agency) because: weak sourcing" in entries[1][2]
    assert entries[0][2].startswith(f"edition {edition.id} (daily {day.isoformat()}): d3 ")
    with app.store.session() as session:
        view = desk_view(session, s, None, day, now=now, with_subject=False)
    assert [h.action for h in view.history] == ["add", "move-up", "leave-out", "pin"]
    assert [a.id for a in view.articles] == ids and view.articles[0].pinned


def test_asking_twice_changes_and_logs_nothing(newsroom) -> None:  # type: ignore[no-untyped-def]
    app, day, now = newsroom.app, newsroom.day, newsroom.now
    for _ in range(2):
        with app.store.session() as session:
            last = actions.pin(session, app.settings, None, day, "d2", by="ed", now=now)
    assert not last.changed
    with app.store.session() as session:
        already = actions.add(session, app.settings, None, day, "d1", by="ed", now=now)
    assert not already.changed
    assert [a for a, _, _ in desk_audit(app)] == ["pin"]


def test_bad_requests_are_refused_with_the_reason_and_store_nothing(newsroom) -> None:  # type: ignore[no-untyped-def]
    app, day, now = newsroom.app, newsroom.day, newsroom.now
    with app.store.session() as session:
        row = session.get(ArticleRow, "d6")
        assert row is not None
        row.published_at = now - timedelta(days=5)
    with app.store.session() as session, pytest.raises(DeskRefused, match="not published in the edition's window"):
        actions.add(session, app.settings, None, day, "d6", by="ed", now=now)
    with app.store.session() as session, pytest.raises(DeskRefused, match="already first"):
        actions.move(session, app.settings, None, day, "d1", "up", by="ed", now=now)
    with app.store.session() as session, pytest.raises(DeskRefused, match="already last"):
        actions.move(session, app.settings, None, day, "d4", "down", by="ed", now=now)
    with app.store.session() as session, pytest.raises(DeskRefused, match="add it first"):
        actions.move(session, app.settings, None, day, "d5", "up", by="ed", now=now)
    with app.store.session() as session, pytest.raises(DeskRefused, match="past editions are read-only"):
        actions.pin(session, app.settings, None, day - timedelta(days=2), "d1", by="ed", now=now)
    assert desk_audit(app) == []
    with app.store.session() as session:
        # No draft was made for the past date.
        assert session.scalar(select(EditionRow).where(EditionRow.date == day - timedelta(days=2))) is None


def test_send_delivers_what_the_desk_shows_and_then_refuses_changes(newsroom) -> None:  # type: ignore[no-untyped-def]
    app, day, now = newsroom.app, newsroom.day, newsroom.now
    with app.store.session() as session:
        actions.leave_out(session, app.settings, None, day, "d1", by="ed", now=now)
        actions.pin(session, app.settings, None, day, "d5", by="ed", now=now)
    with app.store.session() as session:
        shown = [a.id for a in desk_view(session, app.settings, None, day, now=now, with_subject=False).articles]
    assert shown == ["d5", "d2", "d3", "d4"]
    summary = send_edition(app, date=day, now=now, progress=False)
    assert summary.sent == 2
    with app.store.session() as session:
        sent = set(session.scalars(select(EditionArticleRow.article_id)))
    assert sent == set(shown)
    # What went out, in order: the .eml files of the file backend link the articles in the desk's order.
    eml = min(Path(app.settings.path(app.settings.outbox_dir)).rglob("*.eml"))
    html = message_from_bytes(eml.read_bytes(), policy=default_policy).get_body(("html",)).get_content()
    assert [html.index(f"news.example.org/{a}") for a in shown] == sorted(html.index(f"news.example.org/{a}")
                                                                          for a in shown)

    later = now + timedelta(minutes=5)
    for attempt in (lambda s: actions.pin(s, app.settings, None, day, "d2", by="ed", now=later),
                    lambda s: actions.leave_out(s, app.settings, None, day, "d2", by="ed", now=later),
                    lambda s: actions.add(s, app.settings, None, day, "d6", by="ed", now=later),
                    lambda s: actions.move(s, app.settings, None, day, "d2", "up", by="ed", now=later),
                    lambda s: actions.approve(s, app.settings, None, day, by="ed", now=later)):
        with app.store.session() as session, pytest.raises(DeskRefused, match="its first delivery went out at"):
            attempt(session)
    with pytest.raises(DeskRefused, match="its first delivery went out at"):
        actions.leave_out_everywhere(app, None, day, "d2", by="ed", now=later)
    assert [a for a, _, _ in desk_audit(app)] == ["leave-out", "pin"]
    with app.store.session() as session:
        view = desk_view(session, app.settings, None, day, now=later, with_subject=False)
        assert session.get(ArticleRow, "d2").retracted_at is None  # type: ignore[union-attr]
    assert not view.editable and "first delivery went out" in (view.locked or "")


def test_leave_out_everywhere_retracts_and_approve_records_who(project: Project) -> None:
    project.write_config(CONFIG)
    app = project.app()
    newsroom = seed(app)
    day, now = newsroom.day, newsroom.now
    with app.store.session() as session:
        ensure_list(session, app.settings).require_approval = True
    change = actions.leave_out_everywhere(app, None, day, "d2", by="Cy Editor", now=now)
    assert change.changed and change.action == "retract"
    with app.store.session() as session:
        assert session.get(ArticleRow, "d2").retracted_at is not None  # type: ignore[union-attr]
    assert "d2" not in selection_ids(app, day)
    with app.store.session() as session:
        approval = actions.approve(session, app.settings, None, day, by="Cy Editor", now=now)
    assert approval.changed
    with app.store.session() as session:
        view = desk_view(session, app.settings, None, day, now=now, with_subject=False)
    assert view.require_approval and view.approved_by == "Cy Editor" and view.approved_at is not None
    assert view.status == "approved"
    assert [(a, by) for a, by, _ in desk_audit(app)] == [("retract", "Cy Editor"), ("approve", "Cy Editor")]


# --- the commands -----------------------------------------------------------------------------------------


def test_commands_change_the_edition_rank_and_build_see(project: Project) -> None:
    project.write_config(CONFIG)
    newsroom = seed(project.app())
    day = newsroom.day.isoformat()
    pinned = project.json("editions", "pin", "d4", "--date", day, "--by", "Dee")
    assert pinned["changed"] and pinned["by"] == "Dee" and pinned["article_id"] == "d4"
    left = project.json("editions", "leave-out", "d1", "--reason", "old news", "--by", "Dee")
    assert left["action"] == "leave-out" and "old news" in left["detail"]
    moved = project.json("editions", "move", "d3", "--down", "--by", "Dee")
    assert moved["action"] == "move-down"
    added = project.json("editions", "add", "d6", "--by", "Dee")
    assert added["changed"]
    desk = project.json("editions", "desk", "--date", day)
    order = [a["id"] for a in desk["articles"]]
    # Pinned d4 first; d1 out; d3 moved below d5, so it was at the bottom when d6 came in and made room.
    assert order == ["d4", "d2", "d5", "d6"]
    assert {c["id"]: c["reason"] for c in desk["candidates"]}["d1"] == f"{LEFT_OUT}: old news"
    assert [h["action"] for h in desk["history"]] == ["add", "move-down", "leave-out", "pin"]
    assert all(h["by"] == "Dee" for h in desk["history"])
    ranked = project.json("rank", "--date", day)
    assert [item["id"] for item in ranked["articles"]] == order
    assert {d["id"]: d["reason"] for d in ranked["dropped"]}["d3"] == "below the limit"
    explained = project.run("rank", "--date", day, "--explain").stdout
    assert LEFT_OUT in explained
    build = project.json("build", "--date", day, "--out", str(project.root / "out"))
    assert build["article_ids"] == order
    text = project.run("editions", "desk").stdout
    assert "candidates that did not make it" in text and "old news" in text

    unpinned = project.json("editions", "unpin", "d4", "--by", "Dee")
    assert unpinned["changed"]
    refused = project.run("editions", "move", "nope", ok=False)
    assert refused.exit_code != 0 and "no article with id 'nope'" in refused.output


def test_commands_are_refused_after_the_first_delivery(project: Project) -> None:
    project.write_config(CONFIG)
    newsroom = seed(project.app())
    day = newsroom.day.isoformat()
    project.json("editions", "pin", "d2", "--by", "Dee")
    # The seed's day is tomorrow's edition after today's cut-off: its window is still open, hence --now.
    sent = project.json("send", "--date", day, "--now")
    assert sent["sent"] == 2
    for args in (["pin", "d3"], ["leave-out", "d2"], ["leave-out", "d2", "--everywhere"], ["add", "d6"],
                 ["move", "d2", "--down"]):
        refused = project.run("editions", *args, "--date", day, ok=False)
        assert refused.exit_code != 0 and "its first delivery went out at" in refused.output, args
    desk = project.json("editions", "desk", "--date", day)
    assert desk["editable"] is False and [h["action"] for h in desk["history"]] == ["pin"]


def test_the_scheduler_sends_the_edition_as_the_desk_left_it(project: Project) -> None:
    from datetime import UTC, date, datetime

    from digest.schedule.runner import run_due
    from digest.store.tables import VariantRow
    from tests.schedule_support import add_articles, add_reader, make_list

    app = project.app()
    day = date(2026, 3, 10)
    make_list(app, "morning", "Europe/Paris", "07:00", approval=True)  # cut-off 06:00Z
    add_reader(app, "morning", 1, active_since=datetime(2026, 3, 1, tzinfo=UTC))
    ids = add_articles(app, datetime(2026, 3, 10, 6, 0, tzinfo=UTC), prefix="desk")
    try:
        built = run_due(app, datetime(2026, 3, 10, 6, 0, tzinfo=UTC))
        assert [i.action for i in built.items] == ["build"]
        at = datetime(2026, 3, 10, 6, 10, tzinfo=UTC)
        with app.store.session() as session:
            actions.leave_out(session, app.settings, "morning", day, ids[0], by="ed", now=at)
            actions.pin(session, app.settings, "morning", day, ids[-1], by="ed", now=at)
            actions.approve(session, app.settings, "morning", day, by="ed", now=at)
            shown = [a.id for a in desk_view(session, app.settings, "morning", day, now=at,
                                             with_subject=False).articles]
        assert shown[0] == ids[-1] and ids[0] not in shown
        sent = run_due(app, datetime(2026, 3, 10, 7, 0, tzinfo=UTC))
        assert [i.action for i in sent.items] == ["send"]
        with app.store.session() as session:
            variants = session.scalars(select(VariantRow)).all()
            delivered = set(session.scalars(select(EditionArticleRow.article_id)))
        assert [v.article_ids for v in variants] == [shown] and delivered == set(shown)
    finally:
        app.close()


# --- the editor's note and the subjects under test ---------------------------------------------------------


def test_the_note_is_a_desk_change_audited_and_refused_by_the_desks_rule(newsroom) -> None:  # type: ignore[no-untyped-def]
    from digest.editorial.note import NoteRefused, set_note

    app, day, now = newsroom.app, newsroom.day, newsroom.now
    with app.store.session() as session:
        change = set_note(session, app.settings, None, day, "Two lines from the night desk.\n\nSleep well.",
                          by="Ada Editor", now=now)
    assert change.changed and change.by == "Ada Editor" and change.at == now
    with app.store.session() as session:
        view = desk_view(session, app.settings, None, day, now=now, with_subject=False)
    assert view.note == "Two lines from the night desk.\n\nSleep well." and view.note_locked is None
    assert view.history[0].action == "note" and view.history[0].by == "Ada Editor"
    [(action, by, detail)] = desk_audit(app)
    assert (action, by) == ("note", "Ada Editor") and "Two lines from the night desk. Sleep well." in detail

    summary = send_edition(app, date=day, now=now, progress=False)
    assert summary.sent == 2
    later = now + timedelta(minutes=5)
    with app.store.session() as session, pytest.raises(NoteRefused, match="its first delivery went out at"):
        set_note(session, app.settings, None, day, "Too late", by="Bo Editor", now=later)
    with app.store.session() as session:
        view = desk_view(session, app.settings, None, day, now=later, with_subject=False)
    assert view.note == "Two lines from the night desk.\n\nSleep well."
    # One rule: the note is locked for the same reason as every other change.
    assert view.note_locked == view.locked and "its first delivery went out at" in (view.locked or "")
    assert issubclass(NoteRefused, DeskRefused) and len(desk_audit(app)) == 1


def test_the_desk_shows_each_subject_under_test_and_once_drawn_its_numbers(project: Project) -> None:
    from digest.send import subject_test
    from digest.store.tables import DeliveryRow, EventRow

    project.write_config(CONFIG)
    app = project.app()
    newsroom = seed(app, subscribers=4)
    day, now = newsroom.day, newsroom.now
    subjects = ["Fictional: the bridge vote tonight", "Fictional: what the council decided"]
    with app.store.session() as session:
        edition = editions.get_or_create_edition(session, app.settings, ensure_list(session, app.settings), day)
        subject_test.create(session, edition, subjects, sample_percent=50, decide_after=60, metric="clicks")
    with app.store.session() as session:
        before = desk_view(session, app.settings, None, day, now=now, with_subject=False).subject_test
    assert before is not None and [s["subject"] for s in before["subjects"]] == subjects
    assert before["drawn_at"] is None and before["winner"] is None

    first = send_edition(app, date=day, now=now, progress=False)
    assert first.sent == 2  # the sample: one reader per subject, two held for the winner
    with app.store.session() as session:
        test = subject_test.test_of(session, edition.id)
        assert test is not None
        second = int(test.variants[next(k for k in test.variants if k.endswith(":1"))])
        reader = session.scalar(select(DeliveryRow.subscriber_id).where(DeliveryRow.variant_id == second))
        session.add(EventRow(provider="file", provider_event_id="desk-click-1", type="clicked",
                             edition_id=edition.id, subscriber_id=reader, occurred_at=now + timedelta(seconds=30)))
    with app.store.session() as session:
        drawn = desk_view(session, app.settings, None, day, now=now, with_subject=False).subject_test
    assert drawn is not None and drawn["drawn_at"] is not None and drawn["held"] == 2
    assert [(s["sample"], s["clicks"], s["winner"]) for s in drawn["subjects"]] == [(1, 0, False), (1, 1, False)]

    send_edition(app, date=day, now=now + timedelta(minutes=2), progress=False)
    with app.store.session() as session:
        decided = desk_view(session, app.settings, None, day, now=now + timedelta(minutes=2),
                            with_subject=False).subject_test
    assert decided is not None and decided["winner"] == subjects[1] and decided["sent_the_winner"] == 2
    assert [s["winner"] for s in decided["subjects"]] == [False, True]
    text = project.run("editions", "desk", "--date", day.isoformat(), env={"COLUMNS": "200"}).stdout
    assert "subjects under test" in text and subjects[1] in text


def test_the_note_command_is_audited_with_by_and_desk_editor(project: Project) -> None:
    project.write_config(CONFIG + 'desk_editor = "Night Editor"\n')
    newsroom = seed(project.app())
    out = project.json("editions", "note", "Fictional: a quiet night.")
    assert out["by"] == "Night Editor" and out["date"] == newsroom.day.isoformat()
    cleared = project.json("editions", "note", "--clear", "--by", "Dee")
    assert cleared["note"] is None and cleared["by"] == "Dee"
    desk = project.json("editions", "desk")
    assert desk["note"] is None and [(h["action"], h["by"]) for h in desk["history"]] == [("note", "Dee"),
                                                                                        ("note", "Night Editor")]
    assert desk["history"][0]["detail"].endswith("cleared")
    project.run("editions", "note", "Fictional: back again.")
    assert "editor's note: Fictional: back again." in project.run("editions", "desk").stdout


def test_the_approve_command_uses_the_desks_editor_name_and_is_audited(project: Project) -> None:
    project.write_config(CONFIG + 'desk_editor = "Night Editor"\n')
    app = project.app()
    newsroom = seed(app)
    with app.store.session() as session:
        ensure_list(session, app.settings).require_approval = True
        edition_id = editions.get_or_create_edition(session, app.settings, ensure_list(session, app.settings),
                                                    newsroom.day).id
    approved = project.json("editions", "approve", str(edition_id))
    assert approved["changed"] and approved["approved_by"] == "Night Editor"
    assert not project.json("editions", "approve", str(edition_id), "--by", "Dee")["changed"]
    desk = project.json("editions", "desk")
    assert desk["approved_by"] == "Night Editor" and desk["approved_at"]
    assert [(h["action"], h["by"]) for h in desk["history"]] == [("approve", "Night Editor")]
