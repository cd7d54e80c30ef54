"""`digest subscribers import/export` on both databases: counts, idempotence, atomicity, resubscribe rules,
suppression, confirmations, and the formula-safe round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from digest.store.tables import AuditRow, SubscriberRow

from .audience_support import confirm_links
from .conftest import Project


def write(project: Project, text: str, name: str = "people.csv") -> str:
    path = project.root / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def imp(project: Project, *args: str, ok: bool = True) -> Any:
    result = project.run("subscribers", "import", *args, "--json", ok=ok)
    return json.loads(result.stdout) if result.exit_code == 0 else result


def counts(report: dict[str, Any]) -> tuple[int, int, int, int]:
    return report["new"], report["updated"], report["unchanged"], report["rejected"]


def by_email(project: Project, list_name: str = "daily") -> dict[str, dict[str, Any]]:
    return {s["email"].lower(): s for s in project.json("subscribers", "ls", "--list", list_name)}


def audit_count(project: Project) -> int:
    app = project.app()
    with app.store.session() as session:
        n = session.scalar(select(func.count()).select_from(AuditRow))
    app.close()
    return int(n or 0)


def test_import_counts_dedupes_and_is_idempotent(project: Project) -> None:
    project.run("lists", "create", "daily", "--topics", "politics,sports")
    path = write(project, "email,name,topics\n"
                          "Ana@Example.org,Ana,politics\n"
                          "ben@example.org,Ben,\n"
                          "ANA@example.ORG,Ana again,\n"
                          "broken,,\n"
                          "user@bücher.example,Jürgen,sports\n")
    first = imp(project, path)
    assert counts(first) == (3, 0, 0, 2)
    assert {(r["line"], r["reason"].split(" (")[0]) for r in first["rejections"]} == {
        (4, "duplicate of line 2"), (5, "invalid email address 'broken': An email address must have an @-sign.")}
    audits = audit_count(project)
    subs = by_email(project)
    assert subs["ana@example.org"]["status"] == "active" and subs["ana@example.org"]["topics"] == ["politics"]
    assert subs["user@bücher.example"]["name"] == "Jürgen"

    again = imp(project, path)
    assert counts(again) == (0, 0, 3, 2)
    assert audit_count(project) == audits  # nothing changed, nothing audited
    assert by_email(project) == subs
    plain = project.run("subscribers", "import", path, env={"COLUMNS": "200"}).stdout
    assert "5 row(s) for list 'daily': 0 new, 3 already on the list (0 updated, 3 unchanged), 2 rejected." in plain
    assert "duplicate of line 2" in plain

    # The list's own addresses are matched case-insensitively; a changed name is an update.
    update = imp(project, write(project, "email,name\nBEN@EXAMPLE.ORG,Benjamin\n", "upd.csv"))
    assert counts(update) == (0, 1, 0, 0)
    assert by_email(project)["ben@example.org"]["name"] == "Benjamin"


def test_dry_run_writes_nothing(project: Project) -> None:
    path = write(project, "email\na@example.org\nb@example.org\n")
    report = imp(project, path, "--dry-run")
    assert report["dry_run"] and counts(report) == (2, 0, 0, 0)
    app = project.app()
    with app.store.session() as session:
        assert session.scalar(select(func.count()).select_from(SubscriberRow)) == 0
        assert session.scalar(select(func.count()).select_from(AuditRow)) == 0
    app.close()
    assert counts(imp(project, path)) == (2, 0, 0, 0)


def test_bad_file_changes_nothing_and_names_the_file(project: Project) -> None:
    imp(project, write(project, "email\nkeep@example.org\n"))
    before = by_email(project)
    result = project.run("subscribers", "import", write(project, "name;city\nX;Y\n", "contacts.csv"), ok=False)
    assert result.exit_code != 0
    assert "contacts.csv:1: no 'email' column" in result.stderr
    result = project.run("subscribers", "import", write(project, "", "empty.csv"), ok=False)
    assert "empty.csv: the file is empty" in result.stderr
    assert by_email(project) == before


def test_resubscribe_rules(project: Project) -> None:
    imp(project, write(project, "email,status\n"
                                "gone@example.org,unsubscribed\n"
                                "bounce@example.org,bounced\n"
                                "spam@example.org,complained\n"
                                "wait@example.org,pending\n"))
    path = write(project, "email,name\ngone@example.org,G\nbounce@example.org,B\nspam@example.org,S\n"
                          "wait@example.org,W\n", "again.csv")
    report = imp(project, path)
    # Names are updated, but nobody who left is made active again; a pending one is (the import vouches).
    assert counts(report) == (0, 4, 0, 0)
    assert sorted(h["email"] for h in report["held"]) == ["bounce@example.org", "gone@example.org",
                                                           "spam@example.org"]
    subs = by_email(project)
    assert {e: s["status"] for e, s in subs.items()} == {
        "gone@example.org": "unsubscribed", "bounce@example.org": "bounced", "spam@example.org": "complained",
        "wait@example.org": "active"}
    assert imp(project, path)["held"]  # still held, still reported, still no change
    assert counts(imp(project, path)) == (0, 0, 4, 0)

    report = imp(project, path, "--resubscribe")
    assert counts(report) == (0, 3, 1, 0) and not report["held"]
    assert {s["status"] for s in by_email(project).values()} == {"active"}
    history = project.json("subscribers", "show", "gone@example.org")["history"]
    assert [(h["old_status"], h["new_status"]) for h in history] == [(None, "unsubscribed"),
                                                                     ("unsubscribed", "active")]
    assert "resubscribe" in history[-1]["reason"]
    assert history[-1]["actor"] == "import:again.csv"


def test_an_import_may_always_unsubscribe(project: Project) -> None:
    imp(project, write(project, "email\nx@example.org\n"))
    report = imp(project, write(project, "email,status\nx@example.org,unsubscribed\n", "unsub.csv"))
    assert counts(report) == (0, 1, 0, 0)
    assert by_email(project)["x@example.org"]["status"] == "unsubscribed"


def test_suppressed_addresses_are_never_imported(project: Project) -> None:
    project.run("subscribers", "suppress", "Blocked@Example.org", "--reason", "complaint")
    report = imp(project, write(project, "email\nblocked@example.org\nfine@example.org\n"))
    assert counts(report) == (1, 0, 0, 1)
    assert report["rejections"][0]["line"] == 2 and "suppression list" in report["rejections"][0]["reason"]
    assert list(by_email(project)) == ["fine@example.org"]


def test_status_pending_sends_one_confirmation_per_new_subscriber(project: Project) -> None:
    path = write(project, "email,name\nnew1@example.org,One\nnew2@example.org,Two\n")
    report = imp(project, path, "--status", "pending")
    assert counts(report) == (2, 0, 0, 0) and report["confirmations_sent"] == 2
    links = confirm_links(project.root)
    assert sorted(to for to, _ in links) == ["One <new1@example.org>", "Two <new2@example.org>"]
    assert {s["status"] for s in by_email(project).values()} == {"pending"}
    again = imp(project, path, "--status", "pending")
    assert counts(again) == (0, 0, 2, 0) and again["confirmations_sent"] == 0
    assert len(confirm_links(project.root)) == 2


def test_a_pending_status_cell_sends_a_confirmation_too(project: Project) -> None:
    """A row the file marks pending is sent its confirmation even without --status pending: otherwise it would
    stay pending forever, never mailed and unable to confirm. A dry run says how many would go, and sends none."""
    path = write(project, "email,status\nwait@example.org,pending\nhere@example.org,\n")
    dry = imp(project, path, "--dry-run")
    assert dry["confirmations_planned"] == 1 and dry["confirmations_sent"] == 0
    assert "Would send 1 confirmation email(s)" in project.run("subscribers", "import", path, "--dry-run").stdout
    assert confirm_links(project.root) == []
    report = imp(project, path)
    assert counts(report) == (2, 0, 0, 0) and report["confirmations_sent"] == 1
    assert [to for to, _ in confirm_links(project.root)] == ["wait@example.org"]
    assert {e: s["status"] for e, s in by_email(project).items()} == {"wait@example.org": "pending",
                                                                       "here@example.org": "active"}
    assert imp(project, path)["confirmations_sent"] == 0  # nothing changed, nothing sent again
    added = project.run("subscribers", "add", "new@example.org", "--status", "pending").stdout
    assert "(status pending); sent a confirmation email." in added


def test_export_round_trips_and_neutralizes_formulas(project: Project) -> None:
    project.run("lists", "create", "weekly", "--topics", "politics,sports")
    src = write(project, 'email;name;topics;timezone;send_time;status\n'
                         '=evil@example.org;=HYPERLINK("http://evil.example","click");politics;;;active\n'
                         'plus@example.org;+49 30 1234;sports,politics;Europe/Berlin;06:15;active\n'
                         'at@example.org;@SUM(1+1);;;;unsubscribed\n'
                         'ok@example.org;"Quote, ""Comma""";;;;pending\n')
    assert counts(imp(project, src, "--list", "weekly")) == (4, 0, 0, 0)
    out = project.root / "export.csv"
    project.run("subscribers", "export", "--list", "weekly", "--out", str(out))
    text = out.read_text(encoding="utf-8")
    for line in text.splitlines()[1:]:
        for cell in line.split(","):
            assert not cell.lstrip('"').startswith(("=", "+", "-", "@")), line
    assert "'=HYPERLINK" in text and "'+49 30 1234" in text and "'@SUM" in text and "'=evil@example.org" in text
    # Back into the same list: nothing changes.
    assert counts(imp(project, str(out), "--list", "weekly")) == (0, 0, 4, 0)
    # Into a fresh list: the same people, names and statuses.
    project.run("lists", "create", "copy", "--topics", "politics,sports")
    assert counts(imp(project, str(out), "--list", "copy")) == (4, 0, 0, 0)
    strip = {"id", "list", "created_at", "confirmed_at", "unsubscribed_at", "active_since", "source"}
    original = {e: {k: v for k, v in s.items() if k not in strip} for e, s in by_email(project, "weekly").items()}
    copied = {e: {k: v for k, v in s.items() if k not in strip} for e, s in by_email(project, "copy").items()}
    assert copied == original
    assert original["=evil@example.org"]["name"] == '=HYPERLINK("http://evil.example","click")'
    # --status filters, and stdout works too.
    only = project.run("subscribers", "export", "--list", "weekly", "--status", "unsubscribed").stdout
    assert only.splitlines()[1:] == ["at@example.org,'@SUM(1+1),,,,unsubscribed,"]


def test_progress_bar_goes_to_stderr_and_json_stays_clean(project: Project, tmp_path: Path) -> None:
    rows = "\n".join(f"p{i}@example.org" for i in range(6000))
    path = write(project, "email\n" + rows + "\n")
    report = imp(project, path)  # --json: parseable stdout (imp parses it), no bar
    assert report["new"] == 6000
    plain = project.run("subscribers", "import", path)
    assert "6000 row(s)" in plain.stdout and "━" not in plain.stdout


def test_an_import_that_fails_part_way_leaves_nothing_behind(project: Project) -> None:
    """All valid rows go in one transaction: merge writes inside the caller's transaction and never commits on its
    own, so a failure after (or while) the rows are written rolls every one of them back."""
    from digest.audience.csv import read_csv
    from digest.audience.importer import merge
    from digest.audience.lists import ensure_list

    imp(project, write(project, "email,name\nkeep@example.org,Keep\n"))
    before = by_email(project)
    parsed = read_csv(write(project, "email,name\n" + "".join(f"n{i}@example.org,N{i}\n" for i in range(12000))
                            + "keep@example.org,Changed\n", "many.csv"))
    app = project.app()
    try:
        with pytest.raises(RuntimeError), app.store.session() as session:
            report = merge(session, ensure_list(session, app.settings), parsed.records, source="many.csv",
                           actor="test")
            assert (report.new, report.updated) == (12000, 1)
            session.flush()
            assert session.scalar(select(func.count()).select_from(SubscriberRow)) == 12001
            raise RuntimeError("the process dies here")
    finally:
        app.close()
    assert by_email(project) == before
    assert audit_count(project) == 1
