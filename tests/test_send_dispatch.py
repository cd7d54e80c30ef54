"""The dispatcher on both databases: exactly once per subscriber through the file, SMTP and SendGrid backends
(the stand-in and aiosmtpd on loopback), provider trouble, stops, in-doubt requests, and the send lease."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest
from sqlalchemy import select

from digest.audience.lifecycle import change_status, suppress
from digest.errors import SendError
from digest.send.guard import EditionBusy, EditionLease
from digest.send.standin import Behaviour, StandinServer
from digest.store.tables import DeliveryRow, LeaseRow, SubscriberRow

from .send_support import (
    DAY,
    NOW,
    SmtpServer,
    SmtpSink,
    add_articles,
    add_subscribers,
    delivery_statuses,
    free_port,
    sendgrid_env,
    use_dkim_smtp,
)
from .send_support import send_on_day as _send


def test_file_backend_sends_once_to_active_unsuppressed_subscribers(project: Any) -> None:
    app = project.app()
    add_articles(app, 5)
    active = add_subscribers(app, 6)
    add_subscribers(app, 2, status="unsubscribed", start=100)
    add_subscribers(app, 1, status="pending", start=200)
    paused = add_subscribers(app, 1, start=300)
    suppressed = add_subscribers(app, 1, start=400)
    with app.store.session() as s:
        s.get(SubscriberRow, paused[0]).paused = True
        suppress(s, "reader400@example.com", "complaint")

    summary = _send(app)
    assert summary.sent == 6 and summary.failed == 0 and summary.status == "sent"
    assert summary.skipped == 1  # the suppressed address gets a `skipped` row, never a message
    outbox = project.root / "outbox"
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == 6
    to = set()
    for path in files:
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        to.add(msg["To"].addresses[0].addr_spec)
        assert msg["List-Unsubscribe"].startswith("<http://127.0.0.1:8040/unsubscribe/")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg.get_content_type() == "multipart/alternative"
        name = msg["To"].addresses[0].display_name
        assert name in msg.get_body(("html",)).get_content()
        assert "{{digest:" not in msg.get_body(("plain",)).get_content()
    assert to == {f"reader{i}@example.com" for i in range(6)}
    with app.store.session() as s:
        rows = {d.subscriber_id: d for d in s.scalars(select(DeliveryRow))}
    assert set(rows) == set(active) | set(suppressed)
    assert rows[suppressed[0]].status == "skipped" and "suppressed" in rows[suppressed[0]].error

    again = _send(app)  # a second run sends nothing more
    assert again.sent == 0 and again.requests == 0
    assert len(list(outbox.glob("*.eml"))) == 6


def test_sendgrid_payload_personalizations_and_exactly_once(project: Any, standin: StandinServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=4, sendgrid_categories='["digest","daily"]')
    add_articles(app, 4)
    ids = add_subscribers(app, 10)
    summary = _send(app)
    assert summary.sent == 10 and summary.requests == 3  # ceil(10 / 4)
    assert standin.state.stats["mail_send_requests_accepted"] == 3
    counts = standin.state.count_by_email()
    assert counts == {f"reader{i}@example.com": 1 for i in range(10)}
    for m in standin.state.messages():
        sid = m.custom_args["subscriber_id"]
        assert int(sid) in ids and m.custom_args["edition_id"] == str(summary.edition_id)
        assert m.headers["List-Unsubscribe"].startswith("<http://127.0.0.1:8040/unsubscribe/")
        assert m.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert m.headers["List-Id"].endswith(".127.0.0.1>")
        html = m.rendered("text/html")
        assert m.name and m.name in html and "{{digest:" not in html
        unsubscribe = m.headers["List-Unsubscribe"].strip("<>")
        assert unsubscribe.replace("&", "&amp;") in html or unsubscribe in html
    # Categories and personalization custom_args are what SendGrid's spec allows (nothing top-level).
    assert _send(app).sent == 0


def test_429_waits_for_the_reset_then_sends(project: Any, standin: StandinServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch)
    add_articles(app, 3)
    add_subscribers(app, 3)
    standin.state.script(Behaviour(status=429, reset_in=1.0))
    started = time.time()
    summary = _send(app)
    elapsed = time.time() - started
    assert summary.rate_limited == 1 and summary.sent == 3 and summary.retries == 0
    assert elapsed >= 1.0, "the retry came before X-RateLimit-Reset"
    assert standin.state.count_by_email() == {f"reader{i}@example.com": 1 for i in range(3)}


def test_500_is_retried_with_backoff(project: Any, standin: StandinServer, monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch)
    add_articles(app, 3)
    add_subscribers(app, 3)
    standin.state.script(Behaviour(status=500), Behaviour(status=503))
    summary = _send(app)
    assert summary.retries == 2 and summary.sent == 3 and summary.failed == 0
    assert standin.state.stats["mail_send_requests"] == 3
    assert standin.state.count_by_email() == {f"reader{i}@example.com": 1 for i in range(3)}


def test_500_gives_up_after_send_max_retries(project: Any, standin: StandinServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_max_retries=1)
    add_articles(app, 3)
    add_subscribers(app, 2)
    standin.state.script(*[Behaviour(status=500, message="backend exploded")] * 2)
    summary = _send(app)
    assert summary.failed == 2 and summary.sent == 0 and summary.retries == 1
    assert delivery_statuses(app) == {"failed": 2}
    with app.store.session() as s:
        errors = set(s.scalars(select(DeliveryRow.error)))
    assert any("backend exploded" in e and "gave up after 1 retries" in e for e in errors)


def test_400_fails_the_batch_without_retrying(project: Any, standin: StandinServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=2)
    add_articles(app, 3)
    add_subscribers(app, 4)
    standin.state.script(Behaviour(status=400, message="The from email does not contain a valid address."))
    summary = _send(app)
    assert summary.failed == 2 and summary.sent == 2 and summary.retries == 0
    assert standin.state.stats["mail_send_requests"] == 2  # one refused, one accepted: no retry loop
    assert any("does not contain a valid address" in e for e in summary.errors)
    with app.store.session() as s:
        failed = list(s.scalars(select(DeliveryRow).where(DeliveryRow.status == "failed")))
    assert len(failed) == 2 and all("400" in (d.error or "") for d in failed)

    # A plain resume never repeats a refused request; --retry-failed sends to exactly those two, once.
    again = _send(app)
    assert again.sent == 0 and standin.state.stats["mail_send_requests"] == 2
    retried = _send(app, retry_failed=True)
    assert retried.retried_failed == 2 and retried.sent == 2 and retried.failed == 0
    assert standin.state.count_by_email() == {f"reader{i}@example.com": 1 for i in range(4)}


def test_subscriber_unsubscribed_after_planning_is_skipped(project: Any, standin: StandinServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=2)
    add_articles(app, 3)
    add_subscribers(app, 4)

    class UnsubscribeLast:
        def start(self, total: int) -> None:
            assert total == 4  # every delivery row exists before the first provider call
            with app.store.session() as s:
                sub = s.scalar(select(SubscriberRow).where(SubscriberRow.email == "reader3@example.com"))
                change_status(s, sub, "unsubscribed", actor="test")

        def advance(self, **_: int) -> None:
            pass

        def finish(self) -> None:
            pass

    summary = _send(app, progress=UnsubscribeLast())
    assert summary.sent == 3 and summary.skipped == 1
    assert "reader3@example.com" not in standin.state.count_by_email()
    with app.store.session() as s:
        row = s.scalar(select(DeliveryRow).where(DeliveryRow.email == "reader3@example.com"))
    assert row.status == "skipped" and row.error == "subscriber is unsubscribed"


def test_stop_leaves_the_rest_pending_and_a_rerun_finishes(project: Any, standin: StandinServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=2)
    add_articles(app, 3)
    add_subscribers(app, 7)
    stop = threading.Event()
    # After the first batch, what the SIGINT/SIGTERM handler does.
    first = _send(app, progress=_AfterFirstBatch(stop.set), stop=stop)
    assert first.stopped and first.sent == 2 and first.pending == 5
    assert delivery_statuses(app) == {"sent": 2, "pending": 5}
    second = _send(app)
    assert second.sent == 5 and second.status == "sent"
    assert standin.state.count_by_email() == {f"reader{i}@example.com": 1 for i in range(7)}


def test_lost_answer_is_in_doubt_and_named(project: Any, standin: StandinServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=2, sendgrid_timeout=0.5)
    add_articles(app, 3)
    add_subscribers(app, 4)
    standin.state.script(Behaviour(hang=3))  # accepted, then the answer never comes in time
    summary = _send(app)
    assert summary.sent == 2 and summary.in_doubt == 2
    assert {d.email for d in summary.in_doubt_found} == {"reader0@example.com", "reader1@example.com"}
    assert all(d.resolution.startswith("kept") for d in summary.in_doubt_found)
    # assume_sent: nobody got it twice, and a rerun does not resend the in-doubt pair.
    assert _send(app).sent == 0
    assert standin.state.count_by_email() == {f"reader{i}@example.com": 1 for i in range(4)}


def test_lost_answer_of_a_scheduled_request_is_cancelled_and_resent(project: Any, standin: StandinServer,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=2, sendgrid_timeout=0.5,
                       sendgrid_send_at_delay=30)
    add_articles(app, 3)
    add_subscribers(app, 4)
    standin.state.script(Behaviour(hang=3))
    summary = _send(app)
    assert summary.sent == 4 and summary.in_doubt == 0 and summary.retries == 1
    everything = standin.state.messages(include_cancelled=True)
    assert sum(standin.state.state_of(m) == "cancelled" for m in everything) == 2
    assert all(m.batch_id and m.send_at and m.send_at >= time.time() + 20 for m in everything)
    assert standin.state.count_by_email() == {f"reader{i}@example.com": 1 for i in range(4)}


def test_smtp_backend_over_aiosmtpd(project: Any) -> None:
    with SmtpServer() as smtp:
        project.env.update({"DIGEST_BACKEND": "smtp", "DIGEST_SMTP_PORT": str(smtp.port),
                            "DIGEST_SEND_BACKOFF_SECONDS": "0.01"})
        app = project.app()
        add_articles(app, 3)
        add_subscribers(app, 5)
        smtp.sink.fail_next = [451, 550]  # a temporary refusal is retried; a permanent one fails that message
        summary = _send(app)
        assert summary.sent == 4 and summary.failed == 1 and summary.retries == 1
        counts = smtp.sink.count_by_rcpt()
        assert sum(counts.values()) == 4 and set(counts.values()) == {1}
        msg = smtp.sink.messages[0]
        assert msg.get_content_type() == "multipart/alternative"
        assert msg["List-Unsubscribe"] and msg["Message-ID"].startswith(f"<digest.{summary.edition_id}.")
        with app.store.session() as s:
            failed = s.scalar(select(DeliveryRow).where(DeliveryRow.status == "failed"))
        assert "550" in failed.error


@pytest.mark.parametrize("smtputf8", [False, True])
def test_smtp_sends_to_internationalized_addresses(project: Any, smtputf8: bool) -> None:
    """An IDN domain travels in its IDNA 2008 ASCII form in the envelope and the To header (straße stays straße:
    xn--strae-oqa, never strasse, someone else's domain); a local part that is not ASCII goes with SMTPUTF8 when
    the server offers it, and otherwise fails that one message, named, instead of crashing the send."""
    from digest.audience.lifecycle import email_key
    from digest.audience.lists import ensure_list
    from digest.audience.validate import normalize_email

    with SmtpServer(enable_SMTPUTF8=smtputf8) as smtp:
        project.env.update({"DIGEST_BACKEND": "smtp", "DIGEST_SMTP_PORT": str(smtp.port)})
        app = project.app()
        add_articles(app, 3)
        with app.store.session() as s:
            list_id = ensure_list(s, app.settings).id
            for raw in ("hiro@Bücher.example", "anna@straße.example", "ñoño@example.org"):
                email = normalize_email(raw)
                s.add(SubscriberRow(list_id=list_id, email=email, email_key=email_key(email), status="active",
                                    active_since=NOW - timedelta(days=3)))
        summary = _send(app)
        expected = {"hiro@xn--bcher-kva.example", "anna@xn--strae-oqa.example"} | ({"ñoño@example.org"}
                                                                                  if smtputf8 else set())
        assert set(smtp.sink.rcpts) == expected
        assert summary.sent == len(expected) and summary.failed == (0 if smtputf8 else 1)
        assert {m["To"].addresses[0].domain for m in smtp.sink.messages} >= {"xn--bcher-kva.example",
                                                                               "xn--strae-oqa.example"}
        assert delivery_statuses(app) == ({"sent": 3} if smtputf8 else {"sent": 2, "failed": 1})
        if not smtputf8:
            with app.store.session() as s:
                failed = s.scalar(select(DeliveryRow).where(DeliveryRow.status == "failed"))
            assert "ñoño@example.org" in failed.error and "SMTPUTF8" in failed.error


def test_an_unreachable_smtp_server_stops_the_send_with_everything_pending(project: Any) -> None:
    """A wrong port or a relay that is down must not fail the edition for everyone, batch after batch: the first
    batch is retried, then the send stops (an error naming the server), every delivery still pending, and the same
    command sends them all once the server answers."""
    project.env.update({"DIGEST_BACKEND": "smtp", "DIGEST_SMTP_PORT": str(free_port()),
                        "DIGEST_SEND_BACKOFF_SECONDS": "0.01", "DIGEST_SEND_MAX_RETRIES": "2"})
    app = project.app()
    add_articles(app, 3)
    add_subscribers(app, 4)
    with pytest.raises(SendError, match=r"cannot connect.*gave up after 2 retries.*stay pending"):
        _send(app)
    assert delivery_statuses(app) == {"pending": 4}
    app.close()
    with SmtpServer() as smtp:
        project.env["DIGEST_SMTP_PORT"] = str(smtp.port)
        summary = _send(project.app())
        assert summary.sent == 4 and summary.failed == 0
        assert sorted(smtp.sink.count_by_rcpt().values()) == [1, 1, 1, 1]


def test_a_second_sender_is_refused_while_the_first_holds_the_lease(project: Any) -> None:
    app = project.app()
    add_articles(app, 3)
    add_subscribers(app, 2)
    assert _send(app, dry_run=True).recipients == 2
    with app.store.session() as s:
        edition_id = _edition_id(s)
    other = EditionLease(app.store, edition_id)
    other.holder = f"{os.uname().nodename}:{os.getppid()}:someone-else"  # a live process on this host
    other.acquire()
    with pytest.raises(EditionBusy, match="being sent by another process"):
        _send(app)
    other.release()
    assert _send(app).sent == 2
    with app.store.session() as s:
        assert s.scalar(select(LeaseRow)) is None  # released at the end


def test_dry_run_stores_nothing(project: Any) -> None:
    app = project.app()
    add_articles(app, 3)
    add_subscribers(app, 3)
    summary = _send(app, dry_run=True)
    assert summary.recipients == 3 and summary.variants == 1 and summary.subjects
    assert delivery_statuses(app) == {}
    assert not (project.root / "outbox").exists()


def test_cancelled_edition_is_not_sent(project: Any) -> None:
    from digest.send.editorial import cancel_edition

    app = project.app()
    add_articles(app, 3)
    add_subscribers(app, 3)
    stop = threading.Event()
    stop.set()  # plan every row, send none
    summary = _send(app, stop=stop)
    assert summary.pending == 3
    result = cancel_edition(app, summary.edition_id)
    assert result["cancelled"] == 3
    with pytest.raises(SendError, match="was cancelled"):
        _send(app)


def _edition_id(session: Any) -> int:
    from digest.store.tables import EditionRow

    return int(session.scalar(select(EditionRow.id)))


def test_smtp_messages_are_dkim_signed(project: Any) -> None:
    import dkim

    with SmtpServer() as smtp:
        record = use_dkim_smtp(project, smtp.port, selector="digest2024")
        app = project.app()
        add_articles(app, 3)
        add_subscribers(app, 2)
        assert _send(app).sent == 2
        raw = smtp.sink.raw[0]
    assert raw.startswith(b"DKIM-Signature:") and b"d=example.org" in raw and b"s=digest2024" in raw

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"digest2024._domainkey.example.org."
        return record

    assert dkim.verify(raw, dnsfunc=dns)
    assert not dkim.verify(raw.replace(b"Reader", b"Raider", 1), dnsfunc=dns)  # any change breaks it


class _AfterFirstBatch:
    """A progress reporter that runs ``action`` once, right after the first batch was handed to the provider."""

    def __init__(self, action: Any) -> None:
        self.action = action
        self.done = False

    def start(self, total: int) -> None:
        pass

    def advance(self, **_: int) -> None:
        if not self.done:
            self.done = True
            self.action()

    def finish(self) -> None:
        pass


def test_cancel_during_a_send_stops_it_at_the_next_batch(project: Any, standin: StandinServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from digest.send.editorial import cancel_edition

    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=2)
    add_articles(app, 3)
    add_subscribers(app, 6)
    with app.store.session() as s:
        from digest.audience.lists import ensure_list
        from digest.editions import get_or_create_edition

        edition_id = get_or_create_edition(s, app.settings, ensure_list(s, app.settings), DAY).id
    summary = _send(app, progress=_AfterFirstBatch(lambda: cancel_edition(app, edition_id)))
    assert summary.sent == 2 and summary.status == "cancelled" and summary.pending == 0
    assert delivery_statuses(app) == {"sent": 2, "cancelled": 4}
    assert sum(standin.state.count_by_email().values()) == 2  # nothing after the cancel went out
    with pytest.raises(SendError, match="was cancelled"):
        _send(app)


def test_retract_during_a_send_moves_the_rest_to_a_variant_without_it_in_the_same_run(
        project: Any, standin: StandinServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from digest.send.editorial import retract_article

    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=2)
    ids = add_articles(app, 4)
    add_subscribers(app, 6)
    victim = ids[0]  # the freshest: first in every selection
    outcome: list[Any] = []
    summary = _send(app, progress=_AfterFirstBatch(lambda: outcome.append(retract_article(app, victim))))
    assert outcome[0].editions[0]["deliveries_moved"] == 4
    assert summary.sent == 6 and summary.pending == 0 and summary.status == "sent" and summary.variants == 2
    assert standin.state.count_by_email() == {f"reader{i}@example.com": 1 for i in range(6)}
    title = "Fictional story number 0 about"
    with_victim = [m.email for m in standin.state.messages() if title in m.rendered("text/html")]
    assert sorted(with_victim) == ["reader0@example.com", "reader1@example.com"]  # the batch already sent


def test_a_claim_takes_only_rows_still_pending_in_their_variant(project: Any) -> None:
    """What keeps a cancel or a retract committed between a send's read and its claim (PostgreSQL's READ
    COMMITTED allows it) from being overridden: the claim re-checks status and variant, and only claimed rows go."""
    from digest.send import outbox
    from digest.store.tables import EditionRow

    app = project.app()
    add_articles(app, 3)
    add_subscribers(app, 4)
    stop = threading.Event()
    stop.set()
    summary = _send(app, stop=stop)  # rows planned, none sent
    with app.store.session() as s:
        rows = list(s.scalars(select(DeliveryRow).order_by(DeliveryRow.id)))
        variant = rows[0].variant_id
        ids = [r.id for r in rows]
        rows[1].status = "cancelled"
        rows[2].variant_id = None  # moved elsewhere
        assert s.get(EditionRow, summary.edition_id) is not None
    with app.store.session() as s:
        claimed = outbox.claim(s, ids, variant, "file:test:1", NOW)
    assert claimed == {ids[0], ids[3]}
    assert delivery_statuses(app) == {"sending": 2, "cancelled": 1, "pending": 1}


def test_the_api_key_never_reaches_a_log_even_at_debug(project: Any, standin: StandinServer,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    import logging

    app = sendgrid_env(project, standin, monkeypatch)
    add_articles(app, 3)
    add_subscribers(app, 2)
    caplog.set_level(logging.DEBUG)
    assert _send(app).sent == 2
    assert standin.state.api_key not in caplog.text


def _loopback_certificate(tmp: Any) -> tuple[Any, Any]:
    """A self-signed certificate for 127.0.0.1 (cert file, key file), made for the test."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "smtp.crt", tmp / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_smtp_over_starttls_or_ssl_with_authentication(project: Any, tmp_path: Any, security: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    cert_file, key_file = _loopback_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # the backend verifies the server like any other
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_file, key_file)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        logins.append((data.login, data.password))
        return AuthResult(success=(data.login, data.password) == (b"digest", b"s3cret"), handled=False)

    sink = SmtpSink()
    # (aiosmtpd does not count an implicit-TLS connection as TLS for auth_require_tls, hence False there.)
    tls = {"tls_context": server_ctx, "require_starttls": True, "auth_require_tls": True} \
        if security == "starttls" else {"ssl_context": server_ctx, "auth_require_tls": False}
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                            auth_exclude_mechanism=["LOGIN"], **tls)
    controller.start()
    try:
        project.env.update({"DIGEST_BACKEND": "smtp", "DIGEST_SMTP_PORT": str(controller.port),
                            "DIGEST_SMTP_SECURITY": security, "DIGEST_SMTP_USER": "digest",
                            "DIGEST_SMTP_PASSWORD": "s3cret", "DIGEST_SEND_MAX_RETRIES": "0"})
        app = project.app()
        add_articles(app, 3)
        add_subscribers(app, 3)
        summary = _send(app)
        assert summary.sent == 3 and sink.count_by_rcpt() == {f"reader{i}@example.com": 1 for i in range(3)}
        assert logins and set(logins) == {(b"digest", b"s3cret")}
        # A wrong password stops the send (every message would fail the same way) and leaves the rows pending.
        project.env["DIGEST_SMTP_PASSWORD"] = "wrong"
        add_subscribers(app, 1, start=50)
        with pytest.raises(SendError, match="refused the login"):
            _send(project.app())
        assert delivery_statuses(app) == {"sent": 3, "pending": 1}
        if security == "starttls":  # without TLS this server offers no AUTH: a setting to fix, not to retry
            project.env.update({"DIGEST_SMTP_SECURITY": "none", "DIGEST_SMTP_PASSWORD": "s3cret"})
            with pytest.raises(SendError, match="AUTH extension not supported.*smtp_security = 'none'"):
                _send(project.app())
            assert delivery_statuses(app) == {"sent": 3, "pending": 1}
    finally:
        controller.stop(no_assert=True)


def test_a_lost_answer_too_close_to_its_send_at_is_not_cancelled_but_in_doubt(
        project: Any, standin: StandinServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # send_at only 1 s ahead: by the time the answer is known lost, a cancel would prove nothing.
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=2, sendgrid_timeout=0.5,
                       sendgrid_send_at_delay=1)
    add_articles(app, 3)
    add_subscribers(app, 4)
    standin.state.script(Behaviour(hang=3))
    summary = _send(app)
    assert summary.sent == 2 and summary.in_doubt == 2 and summary.retries == 0
    assert standin.state.stats["scheduled_sends_cancel"] == 0
    assert any("too late to cancel" in e for e in summary.errors)
    requests = [r["batch_id"] for r in standin.state.requests]
    assert len(requests) == 2 and len(set(requests)) == 2  # the next request got a batch id of its own
    assert standin.state.count_by_email() == {f"reader{i}@example.com": 1 for i in range(4)}


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    import random

    from digest.send.rate import backoff_delay

    rng = random.Random(7)
    for retry, full in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (20, 300.0)]:
        delays = [backoff_delay(retry, 1.0, rng=rng) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays), (retry, min(delays), max(delays))
        assert max(delays) - min(delays) > full / 4  # jitter: retries of many senders spread out


def test_in_doubt_rule_resend_sends_again_and_says_so(project: Any, standin: StandinServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`resend` never loses a message, at the price of a possible duplicate: the documented trade-off."""
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=2, sendgrid_timeout=0.5)
    add_articles(app, 3)
    add_subscribers(app, 4)
    standin.state.script(Behaviour(hang=3))  # accepted, answer lost
    first = _send(app)  # assume_sent (the default): kept in doubt, not sent again
    assert first.in_doubt == 2 and delivery_statuses(app) == {"sent": 2, "in_doubt": 2}
    # The operator switches the rule: the next run sends the in-doubt pair again and names them.
    project.env["DIGEST_IN_DOUBT_RULE"] = "resend"
    second = _send(project.app())
    assert second.sent == 2 and second.in_doubt == 0 and delivery_statuses(app) == {"sent": 4}
    assert {(d.email, d.resolution) for d in second.in_doubt_found} == {
        ("reader0@example.com", "resent (in_doubt_rule=resend)"),
        ("reader1@example.com", "resent (in_doubt_rule=resend)")}
    counts = standin.state.count_by_email()
    assert counts["reader0@example.com"] == counts["reader1@example.com"] == 2  # the accepted one, and again
    assert counts["reader2@example.com"] == counts["reader3@example.com"] == 1
