"""`digest lists` and `digest subscribers` (add, rm, ls, show, unsubscribe, suppress, export-data, forget) on both
databases, with the audit log checked at every status change."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select

from digest.audience.lifecycle import email_hash
from digest.store.tables import (
    AuditRow,
    DeliveryRow,
    EditionRow,
    EventRow,
    MailingListRow,
    SubscriberRow,
    SuppressionRow,
    ThrottleRow,
)

from .audience_support import Web, confirm_links, path_of
from .conftest import Project


def test_lists_create_show_ls_rm(project: Project) -> None:
    created = project.json("lists", "create", "morning", "--from-email", "Desk@News.Example",
                           "--from-name", "Morning Desk", "--reply-to", "letters@news.example",
                           "--timezone", "Europe/Berlin", "--send-time", "6:05", "--topics", "Politics, sports")
    assert created["from_email"] == "Desk@news.example" and created["send_time"] == "06:05"
    assert created["topics"] == ["politics", "sports"] and created["double_opt_in"] is True
    defaults = project.json("lists", "create", "evening", "--single-opt-in")
    assert (defaults["from_email"], defaults["from_name"]) == ("newsletter@example.org", "The Daily Digest")
    assert defaults["double_opt_in"] is False and defaults["timezone"] == "UTC"
    assert [d["name"] for d in project.json("lists", "ls")] == ["evening", "morning"]
    project.run("subscribers", "add", "a@example.org", "--list", "morning")
    shown = project.json("lists", "show", "morning")
    assert shown["subscribers"] == {"active": 1} and shown["reply_to"] == "letters@news.example"
    assert "morning" in project.run("lists", "ls").stdout

    for args, message in [
        (("lists", "create", "morning"), "already exists"),
        (("lists", "create", "x", "--timezone", "Mars/Olympus"), "--timezone: unknown time zone 'Mars/Olympus'"),
        (("lists", "create", "x", "--send-time", "25:61"), "--send-time: invalid send time '25:61'"),
        (("lists", "create", "x", "--from-email", "nobody"), "--from-email: invalid email address 'nobody'"),
        (("lists", "create", "bad name!"), "invalid list name"),
        (("lists", "show", "nope"), "no list named 'nope'"),
        (("lists", "rm", "morning"), "has 1 subscriber(s); pass --force"),
    ]:
        result = project.run(*args, ok=False)
        assert result.exit_code != 0 and message in result.stderr, (args, result.stderr)
    assert project.json("lists", "rm", "morning", "--force") == {"removed": "morning", "subscribers_removed": 1}
    assert [d["name"] for d in project.json("lists", "ls")] == ["evening"]
    # Removing a list with its subscribers audits each one's end, as `subscribers rm` does.
    app = project.app()
    with app.store.session() as session:
        last = session.scalars(select(AuditRow).order_by(AuditRow.id.desc())).first()
        assert last is not None
        assert (last.email_key, last.old_status, last.new_status, last.actor) == ("a@example.org", "active",
                                                                                  "removed", "cli")
        assert last.reason == "list morning removed" and last.at is not None
    app.close()


def test_subscribers_add_show_ls_unsubscribe_rm_with_audit(project: Project) -> None:
    project.run("lists", "create", "daily", "--topics", "politics,sports", "--timezone", "America/New_York")
    project.run("subscribers", "add", "Eve@Example.org", "--name", "Eve", "--topics", "sports",
                "--send-time", "08:00")
    again = project.run("subscribers", "add", "eve@example.org", "--name", "Eve")
    assert "Unchanged" in again.stdout
    shown = project.json("subscribers", "show", "EVE@example.ORG")
    assert shown["status"] == "active" and shown["email"] == "Eve@example.org"
    assert shown["effective"] == {"topics": ["sports"], "timezone": "America/New_York", "send_time": "08:00",
                                  "language": "en"}
    listed = project.json("subscribers", "ls")
    assert isinstance(listed, list) and [s["email"] for s in listed] == ["Eve@example.org"]
    assert listed[0]["status"] == "active"

    bad = project.run("subscribers", "add", "x@example.org", "--topics", "gardening", ok=False)
    assert "x@example.org: unknown topic(s) gardening" in bad.stderr
    bad = project.run("subscribers", "add", "not-an-address", ok=False)
    assert "not-an-address: invalid email address" in bad.stderr

    done = project.json("subscribers", "unsubscribe", "eve@example.org", "--reason", "asked by phone")
    assert done == {"email": "Eve@example.org", "list": "daily", "status": "unsubscribed", "changed": True}
    assert project.json("subscribers", "unsubscribe", "eve@example.org")["changed"] is False
    held = project.run("subscribers", "add", "eve@example.org")
    assert "kept unsubscribed" in held.stderr
    assert project.json("subscribers", "show", "eve@example.org")["status"] == "unsubscribed"
    project.run("subscribers", "add", "eve@example.org", "--resubscribe")
    history = project.json("subscribers", "show", "eve@example.org")["history"]
    assert [(h["old_status"], h["new_status"], h["actor"], h["reason"]) for h in history] == [
        (None, "active", "cli", "imported from cli"),
        ("active", "unsubscribed", "cli", "asked by phone"),
        ("unsubscribed", "active", "cli", "imported from cli with --resubscribe"),
    ]
    assert project.json("subscribers", "ls", "--status", "unsubscribed") == []

    project.run("subscribers", "rm", "eve@example.org")
    assert project.json("subscribers", "ls") == []
    missing = project.run("subscribers", "show", "eve@example.org", ok=False)
    assert "eve@example.org: not a subscriber of list 'daily'" in missing.stderr
    app = project.app()
    with app.store.session() as session:
        last = session.scalars(select(AuditRow).order_by(AuditRow.id.desc())).first()
        assert last is not None and (last.old_status, last.new_status) == ("active", "removed")
    app.close()


def test_add_pending_sends_a_confirmation(project: Project) -> None:
    out = project.json("subscribers", "add", "p@example.org", "--status", "pending", "--name", "Pat")
    assert out["status"] == "pending"
    assert len(list((project.root / "outbox").rglob("*.eml"))) == 1


def test_confirm_again_sends_a_working_link_only_to_a_pending_subscriber(project: Project) -> None:
    project.run("subscribers", "add", "p@example.org", "--status", "pending")
    project.run("subscribers", "add", "a@example.org")
    out = project.json("subscribers", "confirm-again", "P@Example.org")
    assert out == {"email": "p@example.org", "list": "daily", "status": "pending", "confirmation_sent": True}
    links = confirm_links(project.root)
    assert [email for email, _ in links] == ["p@example.org", "p@example.org"]
    refused = project.run("subscribers", "confirm-again", "a@example.org", ok=False)
    assert refused.exit_code == 1 and "a@example.org is active" in refused.output
    assert len(confirm_links(project.root)) == 2  # nothing sent to an active subscriber
    # The newest link confirms through the public app.
    from digest.web.public import create_app

    app = project.app()
    web = Web(create_app(app))
    try:
        path = path_of(links[-1][1])
        assert web.post(path).status_code == 200
        assert project.json("subscribers", "show", "p@example.org")["status"] == "active"
    finally:
        web.close()
        app.close()


def test_suppress_marks_every_list_and_blocks_imports(project: Project) -> None:
    project.run("lists", "create", "second")
    project.run("subscribers", "add", "x@example.org")
    project.run("subscribers", "add", "X@example.org", "--list", "second")
    project.run("subscribers", "add", "y@example.org")
    result = project.json("subscribers", "suppress", "x@example.org", "y@example.org", "--reason", "bounce")
    assert result == [{"email": "x@example.org", "newly_suppressed": True, "subscribers_changed": 2},
                      {"email": "y@example.org", "newly_suppressed": True, "subscribers_changed": 1}]
    assert project.json("subscribers", "show", "x@example.org", "--list", "second")["status"] == "bounced"
    assert project.json("subscribers", "suppress", "x@example.org")[0]["newly_suppressed"] is False

    csv_file = project.root / "bounces.csv"
    csv_file.write_text("Email;Reason\nz@example.org;hard\n", encoding="utf-8")
    project.run("subscribers", "add", "z@example.org")
    project.run("subscribers", "suppress", "--file", str(csv_file))
    assert project.json("subscribers", "show", "z@example.org")["status"] == "bounced"  # the row's reason
    blocked = project.run("subscribers", "add", "z@example.org", "--resubscribe", ok=False)
    assert "suppression list" in blocked.stderr
    bad = project.root / "bad.csv"
    bad.write_text("email\nok@example.org\nnope\n", encoding="utf-8")
    refused = project.run("subscribers", "suppress", "--file", str(bad), ok=False)
    assert f"{bad}:3:" in refused.stderr
    app = project.app()
    with app.store.session() as session:
        stored = session.scalars(select(SuppressionRow.email_hash)).all()
        assert email_hash("ok@example.org") not in stored  # all or nothing
        assert all("@" not in h for h in stored)
    app.close()


def _seed_sends(project: Project, email: str) -> None:
    """A delivery and two provider events for ``email``, as the send and feedback parts would store them."""
    app = project.app()
    now = datetime.now(UTC)
    with app.store.session() as session:
        sub = session.scalars(select(SubscriberRow).where(SubscriberRow.email_key == email.lower())).first()
        assert sub is not None
        edition = EditionRow(list_id=sub.list_id, date=date(2024, 5, 1), window_start=now, cutoff_at=now)
        session.add(edition)
        session.flush()
        session.add(DeliveryRow(edition_id=edition.id, subscriber_id=sub.id, email=sub.email, status="sent"))
        session.add(EventRow(provider="sendgrid", provider_event_id="ev1", type="open", email_key=sub.email_key,
                             edition_id=edition.id, subscriber_id=sub.id, occurred_at=now,
                             payload={"email": sub.email, "ip": "203.0.113.9", "event": "open",
                                      "nested": {"note": f"to {sub.email}"}}))
        session.add(EventRow(provider="sendgrid", provider_event_id="ev2", type="click", email_key=sub.email_key,
                             occurred_at=now, url="https://news.example/a", payload={"event": "click"}))
        session.add(ThrottleRow(scope="subscribe_address", key=email_hash(email), bucket="2024-05-01", hits=1))
    app.close()


def test_export_data_and_forget(project: Project) -> None:
    project.run("lists", "create", "second")
    project.run("subscribers", "add", "Gone@Example.org", "--name", "Gone Person")
    project.run("subscribers", "add", "gone@example.org", "--list", "second")
    project.run("subscribers", "unsubscribe", "gone@example.org", "--list", "second")
    project.run("subscribers", "add", "stay@example.org", "--name", "Stays")
    _seed_sends(project, "gone@example.org")

    data = json.loads(project.run("subscribers", "export-data", "GONE@example.org").stdout)
    assert data["email"] == "gone@example.org"
    assert sorted(s["list"] for s in data["subscriptions"]) == ["daily", "second"]
    assert len(data["audit_log"]) == 3 and len(data["deliveries"]) == 1 and len(data["events"]) == 2
    assert data["events"][0]["payload"]["ip"] == "203.0.113.9"
    assert data["suppressed"] is None
    out = project.root / "gone.json"
    project.run("subscribers", "export-data", "gone@example.org", "--out", str(out))
    assert json.loads(out.read_text())["email"] == "gone@example.org"

    result = project.json("subscribers", "forget", "gone@example.org", "--yes")
    assert result == {"subscriptions": 2, "audit_rows": 3, "deliveries": 1, "events": 2,
                      "newly_suppressed": True}
    app = project.app()
    with app.store.session() as session:
        def dump(model: Any) -> str:
            return " ".join(repr({c.key: getattr(r, c.key) for c in model.__table__.columns})
                            for r in session.scalars(select(model)))
        everything = " ".join(dump(m) for m in (SubscriberRow, AuditRow, DeliveryRow, EventRow, MailingListRow,
                                                SuppressionRow, ThrottleRow))
        assert "gone@example.org" not in everything.lower()
        assert "203.0.113.9" not in everything and "Gone Person" not in everything
        assert "stay@example.org" in everything  # nobody else touched
        assert session.scalar(select(func.count()).select_from(DeliveryRow)) == 1  # statistics still add up
        forgotten = session.scalars(select(AuditRow).where(AuditRow.new_status == "forgotten")).all()
        assert len(forgotten) == 2 and all(a.email_key is None for a in forgotten)
    app.close()
    after = json.loads(project.run("subscribers", "export-data", "gone@example.org").stdout)
    assert after["subscriptions"] == [] and after["deliveries"] == [] and after["events"] == []
    assert after["suppressed"]["reason"] == "forgotten"
    # Never imported again, and a second erasure has nothing left to do.
    csv_file = project.root / "back.csv"
    csv_file.write_text("email\ngone@example.org\n", encoding="utf-8")
    report = project.json("subscribers", "import", str(csv_file))
    assert report["new"] == 0 and report["rejected"] == 1
    again = project.json("subscribers", "forget", "gone@example.org", "--yes")
    # The address stays suppressed; this erasure did not have to add it (the key says which, as `suppress` does).
    assert again == {"subscriptions": 0, "audit_rows": 0, "deliveries": 0, "events": 0, "newly_suppressed": False}
    text = project.run("subscribers", "forget", "gone@example.org", "--yes").stdout
    assert "the address was suppressed already." in text


def test_forget_asks_first(project: Project) -> None:
    project.run("subscribers", "add", "ask@example.org")
    refused = project.run("subscribers", "forget", "ask@example.org", input="n\n", ok=False)
    assert refused.exit_code != 0
    assert project.json("subscribers", "show", "ask@example.org")["status"] == "active"


def test_forget_after_a_bounce_leaves_no_trace_and_keeps_the_address_out(project: Project) -> None:
    """A bounced address is already suppressed, with the provider's reason (which quotes the address) as detail:
    forgetting it must scrub that too, and mark the entry as an erasure so later events stay anonymous."""
    project.run("subscribers", "add", "Bounced@Example.org", "--name", "Bea")
    app = project.app()
    now = datetime.now(UTC)
    with app.store.session() as session:
        sub = session.scalars(select(SubscriberRow)).one()
        edition = EditionRow(list_id=sub.list_id, date=date(2024, 5, 2), window_start=now, cutoff_at=now)
        session.add(edition)
        session.flush()
        session.add(DeliveryRow(edition_id=edition.id, subscriber_id=sub.id, email=sub.email, status="failed",
                                error="550 5.1.1 <bounced@example.org>: Recipient address rejected"))
        session.add(EventRow(provider="sendgrid", provider_event_id="b1", type="bounced", email_key=sub.email_key,
                             edition_id=edition.id, subscriber_id=sub.id, occurred_at=now,
                             reason="550 5.1.1 <Bounced@example.org>: user unknown", payload={"event": "bounce"}))
        session.add(SuppressionRow(email_hash=email_hash("bounced@example.org"), reason="bounced",
                                   detail="hard bounce: 550 5.1.1 <bounced@example.org>: user unknown"))
    app.close()

    result = project.json("subscribers", "forget", "bounced@example.org", "--yes")
    assert result["subscriptions"] == 1 and result["newly_suppressed"] is False  # it was suppressed already
    app = project.app()
    with app.store.session() as session:
        everything = " ".join(
            repr({c.key: getattr(r, c.key) for c in model.__table__.columns})
            for model in (SubscriberRow, AuditRow, DeliveryRow, EventRow, SuppressionRow)
            for r in session.scalars(select(model)))
        assert "bounced@example.org" not in everything.lower() and "Bea" not in everything
        entry = session.scalars(select(SuppressionRow)).one()
        assert (entry.reason, entry.detail) == ("forgotten", "erasure request")
    app.close()
    report = project.json("subscribers", "import", str(_csv(project, "email\nbounced@example.org\n")))
    assert (report["new"], report["rejected"]) == (0, 1)
    assert project.run("subscribers", "add", "bounced@example.org", ok=False).exit_code != 0


def _csv(project: Project, text: str) -> Any:
    path = project.root / "back.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_reused_subscriber_id_never_mixes_two_peoples_data(project: Project) -> None:
    """History, export-data and forget go by the address as well as the id, so one person's data never shows up
    in (or is erased with) another's, even if an id were ever handed out twice."""
    project.run("subscribers", "add", "first@example.org")
    project.run("subscribers", "add", "gone@example.org", "--name", "Gone")
    gone_id = project.json("subscribers", "show", "gone@example.org")["id"]
    _seed_sends(project, "gone@example.org")
    project.run("subscribers", "rm", "gone@example.org")
    new = project.json("subscribers", "add", "new@example.org")
    # Ids are never reused any more (sqlite_autoincrement); matching by address stays as a second guard.
    assert new["id"] != gone_id
    history = project.json("subscribers", "show", "new@example.org")["history"]
    assert [(h["email_key"], h["new_status"]) for h in history] == [("new@example.org", "active")]
    data = json.loads(project.run("subscribers", "export-data", "new@example.org").stdout)
    assert "gone@example.org" not in json.dumps(data)
    assert data["deliveries"] == [] and data["events"] == [] and len(data["audit_log"]) == 1
    project.json("subscribers", "forget", "new@example.org", "--yes")
    gone = json.loads(project.run("subscribers", "export-data", "gone@example.org").stdout)
    assert [d["email"] for d in gone["deliveries"]] == ["gone@example.org"]  # untouched by the other's erasure
    assert len(gone["events"]) == 2 and len(gone["audit_log"]) == 2
