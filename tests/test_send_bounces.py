"""Refusals at send time: an SMTP 5xx for one recipient (RCPT or end of DATA) or SendGrid's 400 naming one address
fails that delivery as a hard bounce (suppressed everywhere, audited, counted, skipped next time) while the rest
goes out; an SMTP 4xx is tried again later in the same send."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from digest.audience.lifecycle import is_suppressed
from digest.send.standin import StandinServer
from digest.store.tables import AuditRow, DeliveryRow, SubscriberRow

from .send_support import (
    DAY,
    NOW,
    SmtpServer,
    SmtpSink,
    add_articles,
    add_subscribers,
    delivery_statuses,
    sendgrid_env,
)
from .send_support import send_on_day as _send


class RefusingSink(SmtpSink):
    """The SMTP sink, refusing chosen recipients: ``rcpt`` at RCPT TO, ``data`` after the message; each value is
    a list of replies given in turn (then the recipient is accepted)."""

    def __init__(self, rcpt: dict[str, list[str]] | None = None, data: dict[str, list[str]] | None = None) -> None:
        super().__init__()
        self.at_rcpt = rcpt or {}
        self.at_data = data or {}
        self.sessions = 0
        self.tried: list[str] = []

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        self.tried.append(address)
        replies = self.at_rcpt.get(address)
        if replies:
            return replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        replies = self.at_data.get(envelope.rcpt_tos[0])
        if replies:
            return replies.pop(0)
        return await super().handle_DATA(server, session, envelope)


def _smtp_app(project: Any, port: int) -> Any:
    project.env.update({"DIGEST_BACKEND": "smtp", "DIGEST_SMTP_PORT": str(port),
                        "DIGEST_SEND_BACKOFF_SECONDS": "0.01", "DIGEST_SEND_MAX_RETRIES": "2"})
    return project.app()


def _subscriber(app: Any, email: str) -> SubscriberRow:
    with app.store.session() as s:
        row = s.scalars(select(SubscriberRow).where(SubscriberRow.email == email)).one()
        s.expunge(row)
        return row


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_550_bounces_that_reader_only_and_the_next_send_skips_them(project: Any, stage: str) -> None:
    refusal = {"reader1@example.com": ["550 5.1.1 <reader1@example.com>: User unknown"]}
    sink = RefusingSink(**{stage: refusal})
    with SmtpServer(sink) as smtp:
        app = _smtp_app(project, smtp.port)
        add_articles(app, 3)
        add_subscribers(app, 4)
        project.run("lists", "create", "weekly")
        add_subscribers(app, 1, list_name="weekly", start=1)  # the same address on another list
        summary = _send(app)
        assert (summary.sent, summary.failed, summary.bounced) == (3, 1, 1), summary.errors
        assert sink.sessions == 1  # one connection, carried on past the refusal
        assert sorted(sink.count_by_rcpt()) == ["reader0@example.com", "reader2@example.com", "reader3@example.com"]
        with app.store.session() as s:
            failed = s.scalars(select(DeliveryRow).where(DeliveryRow.status == "failed")).one()
            assert failed.email == "reader1@example.com" and "550 5.1.1" in (failed.error or "")
            assert "User unknown" in (failed.error or "")
            assert is_suppressed(s, "reader1@example.com")
            rows = s.scalars(select(SubscriberRow).where(SubscriberRow.email == "reader1@example.com")).all()
            assert [r.status for r in rows] == ["bounced", "bounced"]  # on every list
            audits = s.scalars(select(AuditRow).where(AuditRow.email_key == "reader1@example.com",
                                                      AuditRow.new_status == "bounced")).all()
            assert len(audits) == 2 and {a.actor for a in audits} == {"send:smtp"}
            assert all("550 5.1.1" in (a.reason or "") for a in audits)
        stats = project.json("stats", "--edition", str(summary.edition_id))["editions"][0]
        assert stats["bounced"] == 1 and stats["sent"] == 3

        add_articles(app, 3, before=NOW + timedelta(days=1), prefix="next")
        again = _send(app, date=DAY + timedelta(days=1), now=NOW + timedelta(days=1))
        assert again.sent == 3 and again.failed == 0
        assert sink.tried.count("reader1@example.com") == 1  # never tried again


def test_a_policy_refusal_fails_the_delivery_without_suppressing_the_reader(project: Any) -> None:
    sink = RefusingSink(rcpt={"reader0@example.com": ["550 5.7.1 Relaying denied"]})
    with SmtpServer(sink) as smtp:
        app = _smtp_app(project, smtp.port)
        add_articles(app, 3)
        add_subscribers(app, 2)
        summary = _send(app)
    assert (summary.sent, summary.failed, summary.bounced) == (1, 1, 0)
    assert _subscriber(app, "reader0@example.com").status == "active"
    with app.store.session() as s:
        assert not is_suppressed(s, "reader0@example.com")


def test_a_451_is_tried_again_once_the_rest_went_out(project: Any) -> None:
    sink = RefusingSink(rcpt={"reader0@example.com": ["451 4.7.1 Greylisted, try again later"]})
    with SmtpServer(sink) as smtp:
        app = _smtp_app(project, smtp.port)
        add_articles(app, 3)
        add_subscribers(app, 3)
        summary = _send(app)
    assert (summary.sent, summary.failed, summary.bounced) == (3, 0, 0), summary.errors
    # Refused first, then the others, then accepted on the second try: the connection did not wait for it.
    assert sink.tried == ["reader0@example.com", "reader1@example.com", "reader2@example.com",
                          "reader0@example.com"]
    assert sink.count_by_rcpt() == {"reader0@example.com": 1, "reader1@example.com": 1, "reader2@example.com": 1}
    assert delivery_statuses(app) == {"sent": 3} and sink.sessions == 1


def test_a_4xx_that_never_passes_fails_after_the_retries_and_is_no_bounce(project: Any) -> None:
    sink = RefusingSink(data={"reader1@example.com": ["452 4.2.2 Mailbox full"] * 10})
    with SmtpServer(sink) as smtp:
        app = _smtp_app(project, smtp.port)
        add_articles(app, 3)
        add_subscribers(app, 2)
        summary = _send(app)
    assert (summary.sent, summary.failed, summary.bounced) == (1, 1, 0)
    assert len(sink.at_data["reader1@example.com"]) == 10 - 3  # the first try and send_max_retries (2) more
    with app.store.session() as s:
        failed = s.scalars(select(DeliveryRow).where(DeliveryRow.status == "failed")).one()
        assert "452 4.2.2 Mailbox full" in (failed.error or "") and "after 2 retries" in (failed.error or "")
    assert _subscriber(app, "reader1@example.com").status == "active"


def test_sendgrid_refusing_one_address_resends_the_rest_without_it(project: Any, standin: StandinServer,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=100)
    add_articles(app, 3)
    add_subscribers(app, 5)
    standin.state.refuse("reader3@example.com")
    summary = _send(app)
    assert (summary.sent, summary.failed, summary.bounced, summary.requests) == (4, 1, 1, 1), summary.errors
    assert standin.state.stats["status_400"] == 1 and standin.state.stats["mail_send_requests"] == 2
    assert sorted(m.email for m in standin.state.messages()) == [f"reader{i}@example.com" for i in (0, 1, 2, 4)]
    assert _subscriber(app, "reader3@example.com").status == "bounced"
    with app.store.session() as s:
        failed = s.scalars(select(DeliveryRow).where(DeliveryRow.status == "failed")).one()
        assert failed.email == "reader3@example.com" and "Does not contain a valid address" in (failed.error or "")
        assert is_suppressed(s, "reader3@example.com")


def test_a_sendgrid_400_about_the_request_itself_still_fails_the_batch(project: Any, standin: StandinServer,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from digest.send.standin import Behaviour

    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=100)
    add_articles(app, 3)
    add_subscribers(app, 3)
    standin.state.script(Behaviour(status=400, message="The from email does not contain a valid address."))
    summary = _send(app)
    assert (summary.sent, summary.failed, summary.bounced) == (0, 3, 0)
    assert all(_subscriber(app, f"reader{i}@example.com").status == "active" for i in range(3))
