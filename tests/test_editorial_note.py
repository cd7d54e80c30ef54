"""The editor's note: set from the CLI (text or Markdown file), opens the email and its text part, re-renders
planned variants, is audit-logged with who, and is refused once the edition went out (store unchanged), by the
same rule as every change at the editor's desk. Every article, subscriber and address here is fictional."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select

from digest.desk import actions
from digest.desk.actions import DeskRefused
from digest.send.dispatch import send_edition
from digest.send.plan import Planner
from digest.store.tables import EditionRow, VariantRow

from .desk_support import CONFIG, Newsroom, desk_audit, seed

NOTE = ("Good morning. The **council vote** is our lead today; see [the agenda](https://news.example.org/agenda)."
        "\n\nWe also tried <script>alert(1)</script> and [a trap](javascript:alert(1)).")


def _messages(project: Any) -> list[Any]:
    return [message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in sorted((project.root / "outbox").rglob("*.eml"))]


def _newsroom(project: Any) -> Newsroom:
    # The upcoming edition on the real clock, so the command (which has no --now) sees it as the upcoming one.
    project.write_config(CONFIG)
    return seed(project.app())


def _send(newsroom: Newsroom) -> Any:
    return send_edition(newsroom.app, date=newsroom.day, now=newsroom.now, progress=False)


def test_note_opens_email_and_text_part_and_is_refused_after_the_first_delivery(project: Any) -> None:
    newsroom = _newsroom(project)
    app, day = newsroom.app, newsroom.day
    out = project.json("editions", "note", "--date", day.isoformat(), "--by", "Ada Editor", NOTE)
    assert out["note"] == NOTE and out["rerendered_variants"] == [] and out["changed"] and out["by"] == "Ada Editor"
    [(action, by, detail)] = desk_audit(app)
    assert (action, by) == ("note", "Ada Editor")
    assert detail.startswith(f"edition {out['edition_id']} (daily {day.isoformat()}): set (")
    again = project.json("editions", "note", "--date", day.isoformat(), "--by", "Ada Editor", NOTE)
    assert not again["changed"] and len(desk_audit(app)) == 1  # the same note: nothing to log
    shown = project.json("editions", "show", str(out["edition_id"]))
    assert shown["editor_note"] == NOTE
    assert "council vote" in project.run("editions", "show", str(out["edition_id"])).stdout

    assert _send(newsroom).sent == 2
    for msg in _messages(project):
        soup = BeautifulSoup(msg.get_body(("html",)).get_content(), "lxml")
        note = soup.select_one("div.note")
        assert note is not None and soup.select_one("p.greeting") is None  # the note replaces the greeting
        assert note.find("strong").get_text() == "council vote"
        assert note.find("a", string="the agenda")["href"] == "https://news.example.org/agenda"
        assert soup.find("script") is None and "<script>alert(1)</script>" in note.get_text()
        assert not soup.select('a[href^="javascript:"]')
        text = " ".join(msg.get_body(("plain",)).get_content().split())
        assert "The council vote is our lead today; see the agenda <https://news.example.org/agenda>." in text

    refused = project.run("editions", "note", "--date", day.isoformat(), "Too late", ok=False)
    assert refused.exit_code != 0
    assert "can no longer change" in refused.output and "its first delivery went out at" in refused.output
    with app.store.session() as s:
        assert s.scalar(select(EditionRow.editor_note)) == NOTE  # unchanged
    assert len(desk_audit(app)) == 1


def test_a_note_set_after_planning_re_renders_the_planned_variants(project: Any) -> None:
    newsroom = _newsroom(project)
    app, day = newsroom.app, newsroom.day
    project.run("editions", "note", "--date", day.isoformat(), "First thoughts.")
    with app.store.session() as s:
        edition_id = s.scalar(select(EditionRow.id))
        Planner(app.settings, edition_id, newsroom.now).plan_chunk(s, 0, write=True)
    with app.store.session() as s:
        assert "First thoughts." in (s.scalar(select(VariantRow.html)) or "")
    # One rule: once planned, the articles are fixed, the note (re-rendered with them) is not.
    with app.store.session() as s, pytest.raises(DeskRefused, match="its deliveries are planned"):
        actions.pin(s, app.settings, None, day, "d2", by="ed", now=newsroom.now)
    (project.root / "note.md").write_text("Second *thoughts*, on reflection.\n", encoding="utf-8")
    out = project.json("editions", "note", "--date", day.isoformat(), "--file", "note.md")
    assert len(out["rerendered_variants"]) == 1
    assert _send(newsroom).sent == 2
    for msg in _messages(project):
        html = msg.get_body(("html",)).get_content()
        assert "Second <em>thoughts</em>, on reflection." in html and "First thoughts." not in html
    cleared = project.run("editions", "note", "--date", day.isoformat(), "--clear", ok=False)
    assert cleared.exit_code != 0 and "can no longer change" in cleared.output


def test_note_needs_exactly_one_source_and_a_sane_length(project: Any, tmp_path: Path) -> None:
    app = _newsroom(project).app
    assert project.run("editions", "note", ok=False).exit_code == 2
    too_long = project.run("editions", "note", "word " * 1000, ok=False)
    assert too_long.exit_code != 0 and "at most 3000" in too_long.output
    (tmp_path / "bad.md").write_bytes(b"\xff\xfe not utf-8")
    bad = project.run("editions", "note", "--file", str(tmp_path / "bad.md"), ok=False)
    assert bad.exit_code == 2 and "not UTF-8" in bad.output
    assert desk_audit(app) == []
