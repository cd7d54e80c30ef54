"""The send part after review: the edition lease on the real clock, DKIM per list, sandbox requests cut as a real
run cuts them, Reply-To and the list headers alike through every backend, the file backend's folder."""

from __future__ import annotations

import os
from datetime import timedelta
from email.message import EmailMessage
from functools import partialmethod
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from digest.audience.lists import create_list
from digest.errors import ConfigError
from digest.render.message import list_id_header, unsubscribe_mailto
from digest.send import transactional
from digest.send.backends import get_backend
from digest.send.guard import EditionBusy, EditionLease
from digest.send.plan import Planner
from digest.send.standin import StandinServer
from digest.store.tables import EditionRow, LeaseRow

from .conftest import Project
from .send_support import (
    NOW,
    SmtpServer,
    add_articles,
    add_subscribers,
    list_row,
    sendgrid_env,
    use_dkim_smtp,
)
from .send_support import send_on_day as _send

# --- the edition lease ------------------------------------------------------------------------------------------


def test_a_held_edition_lease_is_not_taken_by_a_send_at_a_far_future_now(project: Any) -> None:
    """The scheduler hands its simulated --now to send_edition; the lease must still judge expiry by the real
    clock, or a run "at" a future time would take a live sender's lease and send the edition a second time."""
    app = project.app()
    add_articles(app, 3)
    add_subscribers(app, 2)
    assert _send(app, dry_run=True).recipients == 2
    with app.store.session() as s:
        edition_id = int(s.scalar(select(EditionRow.id)))
    other = EditionLease(app.store, edition_id)
    other.holder = f"{os.uname().nodename}:{os.getppid()}:live-sender"  # a live process on this host
    other.acquire()
    with pytest.raises(EditionBusy, match="being sent by another process"):
        _send(app, now=NOW + timedelta(days=3650))
    with pytest.raises(EditionBusy):
        EditionLease(app.store, edition_id).acquire()
    with app.store.session() as s:
        assert s.get(LeaseRow, other.name).holder == other.holder
    other.release()
    assert _send(app, now=NOW + timedelta(days=3650)).sent == 2


# --- DKIM -------------------------------------------------------------------------------------------------------


def _send_to_weekly(app: Any) -> None:
    """One edition of a list whose From address has its own domain, to one subscriber."""
    with app.store.session() as s:
        create_list(s, app.settings, "weekly", from_email="news@weekly.example.net")
    add_articles(app, 3)
    add_subscribers(app, 1, list_name="weekly")
    assert _send(app, list_name="weekly").sent == 1


def test_without_dkim_domain_each_message_is_signed_with_its_own_from_domain(project: Any) -> None:
    import dkim

    looked_up: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        looked_up.append(name)
        return record

    with SmtpServer() as smtp:
        record = use_dkim_smtp(project, smtp.port)
        app = project.app()
        _send_to_weekly(app)
        confirmation = EmailMessage()
        confirmation["From"] = "Desk <desk@confirm.example.com>"
        confirmation["To"] = "reader@example.com"
        confirmation["Subject"] = "Please confirm"
        confirmation.set_content("Confirm here.")
        transactional.send_message(app.settings, confirmation)
        edition, one_off = smtp.sink.raw
    # Not d=example.org, the domain of the from_email setting: the list's and the message's own From domain.
    assert b"d=weekly.example.net" in edition and dkim.verify(edition, dnsfunc=dns)
    assert b"d=confirm.example.com" in one_off and dkim.verify(one_off, dnsfunc=dns)
    assert looked_up == [b"sel1._domainkey.weekly.example.net.", b"sel1._domainkey.confirm.example.com."]


def test_dkim_domain_when_set_signs_every_message(project: Any) -> None:
    with SmtpServer() as smtp:
        use_dkim_smtp(project, smtp.port, DIGEST_DKIM_DOMAIN="signing.example.org")
        app = project.app()
        _send_to_weekly(app)
        assert b"d=signing.example.org" in smtp.sink.raw[0]


# --- `digest send` options --------------------------------------------------------------------------------------


def test_dry_run_and_sandbox_together_are_refused(sqlite_project: Project) -> None:
    result = sqlite_project.run("send", "--dry-run", "--sandbox", ok=False)
    assert result.exit_code == 2 and "--dry-run and --sandbox cannot go together" in result.output


# --- sandbox requests -------------------------------------------------------------------------------------------


def test_sandbox_sends_the_requests_a_real_run_sends(project: Any, standin: StandinServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=2)
    add_articles(app, 3)
    add_subscribers(app, 7)
    # Planning chunks of 3 do not line up with requests of 2: a chunk's remainder waits for the next chunk.
    monkeypatch.setattr(Planner, "plan_chunk", partialmethod(Planner.plan_chunk, limit=3))
    sandbox = _send(app, sandbox=True)
    assert sandbox.requests == 4 and sandbox.sent == 7  # 2 + 2 + 2 + 1, not 1000 (SendGrid's maximum) at once
    assert standin.state.stats["sandbox_requests"] == 4 and standin.state.messages() == []
    real = _send(app)
    assert real.requests == sandbox.requests and real.sent == 7


# --- SendGrid: Reply-To and the list headers --------------------------------------------------------------------


def test_sendgrid_one_off_message_keeps_its_reply_to(project: Any, standin: StandinServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch)
    message = EmailMessage()
    message["From"] = "The Desk <desk@example.org>"
    message["To"] = "reader@example.com"
    message["Reply-To"] = "News Desk <replies@example.org>"
    message["Subject"] = "A test send"
    message.set_content("Hello.")
    transactional.send_message(app.settings, message)
    (received,) = standin.state.messages()
    assert received.reply_to == {"email": "replies@example.org", "name": "News Desk"}


def test_sendgrid_list_headers_match_the_mime_messages(project: Any, standin: StandinServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, unsubscribe_mailto="leave@example.org")
    add_articles(app, 3)
    add_subscribers(app, 1)
    assert _send(app).sent == 1
    (received,) = standin.state.messages()
    row = list_row(app)
    assert received.headers["List-Id"] == list_id_header(row, str(app.settings.base_url))
    assert received.headers["List-Unsubscribe"].endswith(f", <{unsubscribe_mailto(app.settings)}>")
    # A line break in the address is refused before any batch is claimed, as the MIME builder refuses it.
    with pytest.raises(ConfigError, match="unsubscribe_mailto"):
        get_backend(app.settings.replace(unsubscribe_mailto="leave@example.org\r\nBcc: all@example.org"))


def test_reply_to_is_the_lists_own_not_the_setting_at_send_time(project: Any, standin: StandinServer,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The reply_to setting is what new lists start with: a list made without one sends without one."""
    app = sendgrid_env(project, standin, monkeypatch)
    add_articles(app, 3)
    add_subscribers(app, 1)  # creates the default list, with no Reply-To
    with app.store.session() as s:
        create_list(s, app.settings, "weekly", reply_to="weekly-desk@example.org")
    add_subscribers(app, 1, list_name="weekly", start=10)
    app.close()
    project.env["DIGEST_REPLY_TO"] = "desk@example.org"
    app = project.app()
    assert _send(app).sent == 1
    assert _send(app, list_name="weekly").sent == 1
    by_email = {m.email: m for m in standin.state.messages()}
    assert by_email["reader0@example.com"].reply_to is None
    assert by_email["reader10@example.com"].reply_to == {"email": "weekly-desk@example.org"}


# --- the file backend -------------------------------------------------------------------------------------------


def test_file_backend_creates_its_folder_once_per_send(project: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app = project.app()
    add_articles(app, 3)
    add_subscribers(app, 3)
    outbox = project.root / "outbox"
    made: list[Path] = []
    mkdir = Path.mkdir

    def counting_mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self == outbox:
            made.append(self)
        mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", counting_mkdir)
    assert _send(app).sent == 3
    assert len(list(outbox.glob("*.eml"))) == 3
    assert made == [outbox]
