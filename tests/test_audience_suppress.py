"""`digest subscribers suppress --file`: another provider's suppression export (address and reason per row),
checked whole, applied in one transaction or not at all, on both databases."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from digest.audience.lifecycle import email_hash
from digest.audience.suppressions import reason_of
from digest.audience.validate import Invalid
from digest.store.tables import AuditRow, SubscriberRow, SuppressionRow

from .conftest import Project


def _people(project: Project) -> None:
    project.run("lists", "create", "second")
    for email in ("ann@example.org", "bo@example.org", "cy@example.org", "di@example.org"):
        project.run("subscribers", "add", email)
    project.run("subscribers", "add", "Ann@example.org", "--list", "second")


def _state(project: Project) -> tuple[Any, ...]:
    app = project.app()
    try:
        with app.store.session() as s:
            return (sorted(s.scalars(select(SuppressionRow.email_hash))),
                    sorted(s.execute(select(SubscriberRow.email, SubscriberRow.list_id, SubscriberRow.status)).all()),
                    s.scalar(select(func.count()).select_from(AuditRow)))
    finally:
        app.close()


def _status(project: Project, email: str, list_name: str | None = None) -> str:
    args = ["subscribers", "show", email] + (["--list", list_name] if list_name else [])
    return str(project.json(*args)["status"])


def test_a_suppression_export_marks_each_address_by_its_reason(project: Project) -> None:
    _people(project)
    export = project.root / "suppressions.csv"
    # A SendGrid-style bounce export (reason: the server's reply) mixed with other kinds, and one without reason.
    export.write_text("email,created,reason\n"
                      "ann@example.org,1714550400,550 5.1.1 The email account that you tried to reach does not exist\n"
                      "bo@example.org,1714550400,spamreport\n"
                      "CY@example.org,1714550400,Unsubscribed\n"
                      "di@example.org,1714550400,\n"
                      "nobody@example.org,1714550400,hard_bounce\n", encoding="utf-8")
    result = project.json("subscribers", "suppress", "--file", str(export), "--reason", "complaint")
    assert (result["rows"], result["newly_suppressed"], result["rejected"]) == (5, 5, 0)
    assert [a["reason"] for a in result["addresses"]] == ["bounce", "complaint", "unsubscribe", "complaint",
                                                          "bounce"]
    assert _status(project, "ann@example.org") == "bounced" and _status(project, "ann@example.org", "second") \
        == "bounced"
    assert _status(project, "bo@example.org") == "complained"
    assert _status(project, "cy@example.org") == "unsubscribed"
    assert _status(project, "di@example.org") == "complained"  # no reason in the row: --reason
    history = project.json("subscribers", "show", "ann@example.org")["history"]
    assert history[-1]["actor"] == "import:suppressions.csv" and history[-1]["new_status"] == "bounced"
    app = project.app()
    with app.store.session() as s:
        row = s.scalars(select(SuppressionRow).where(SuppressionRow.email_hash == email_hash("ann@example.org"))).one()
        assert row.reason == "bounce" and "line 2" in (row.detail or "") and "5.1.1" in (row.detail or "")
    app.close()
    again = project.json("subscribers", "suppress", "--file", str(export))
    assert again["newly_suppressed"] == 0 and again["subscribers_changed"] == 0  # idempotent


def test_one_bad_row_refuses_the_whole_file_naming_each_line(project: Project) -> None:
    _people(project)
    before = _state(project)
    export = project.root / "mixed.csv"
    export.write_text("Email Address;Reason\nann@example.org;bounce\nbo@example.org;maybe later\n"
                      "not-an-address;complaint\ncy@example.org;unsubscribe\n", encoding="utf-8")
    refused = project.run("subscribers", "suppress", "--file", str(export), ok=False)
    assert refused.exit_code == 1
    assert f"{export}:3: reason: unknown reason 'maybe later'" in refused.stderr
    assert "2 bad row(s) of 4; nothing was suppressed" in refused.stderr
    assert "email:" in refused.stdout and "4" in refused.stdout  # the table names line 4 too
    data = project.run("subscribers", "suppress", "--file", str(export), "--json", ok=False)
    assert [(r["line"], r["email"]) for r in json.loads(data.stdout)["rejections"]] == [
        (3, "bo@example.org"), (4, "not-an-address")]
    assert _state(project) == before


def test_a_dry_run_reports_and_writes_nothing(project: Project) -> None:
    _people(project)
    before = _state(project)
    export = project.root / "complaints.csv"
    export.write_text("email,type\nbo@example.org,spam\n", encoding="utf-8")
    result = project.json("subscribers", "suppress", "--file", str(export), "--dry-run")
    assert result["dry_run"] is True and result["newly_suppressed"] == 1 and result["subscribers_changed"] == 1
    assert _state(project) == before


def test_a_file_without_an_email_column_is_refused(project: Project) -> None:
    export = project.root / "odd.csv"
    export.write_text("address,reason\nann@example.org,bounce\n", encoding="utf-8")
    refused = project.run("subscribers", "suppress", "--file", str(export), ok=False)
    assert f"{export}:1: no 'email' column" in refused.stderr


@pytest.mark.parametrize(("word", "reason"), [("Hard Bounce", "bounce"), ("spam-report", "complaint"),
                                              ("opted out", "unsubscribe"), ("5.1.1 user unknown", "bounce")])
def test_reasons_in_the_words_providers_use(word: str, reason: str) -> None:
    assert reason_of(word) == reason


def test_a_temporary_failure_is_no_reason_to_suppress() -> None:
    with pytest.raises(Invalid):
        reason_of("451 4.7.1 try again later")
