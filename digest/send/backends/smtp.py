"""The SMTP backend: one personalized message per recipient over one reused connection, optionally DKIM-signed.

Where an error happens decides what it means. Anything before the message body is sent (connect, MAIL,
RCPT, the DATA command) is safe to retry. A failure after the body went out, while waiting for the final
reply, is in doubt: the server may have queued the message.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import getaddresses

import dkim

from digest.audience.validate import Invalid, ascii_domain
from digest.config import Settings
from digest.errors import ConfigError
from digest.send.backends.base import (
    AuthError,
    Backend,
    BatchResult,
    Content,
    InDoubtError,
    PermanentError,
    Recipient,
    RecipientBounced,
    RecipientDeferred,
    Schedule,
    TransientError,
    Unreachable,
)
from digest.send.backends.message import render_message

DKIM_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
                b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type"]


class DkimSigner:
    def __init__(self, settings: Settings) -> None:
        path = settings.path(settings.dkim_private_key_file)
        try:
            self.key = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"dkim_private_key_file: cannot read {path}: {exc}") from None
        if not settings.dkim_selector:
            raise ConfigError("dkim_selector: required when dkim_private_key_file is set")
        self.selector = settings.dkim_selector.encode("ascii")
        self.domain = settings.dkim_domain

    def sign(self, message: bytes, sender: str) -> bytes:
        """Sign as ``dkim_domain``, or else as the domain of ``sender`` (the message's From address): each list
        has its own From address, and DMARC wants the signing domain to match it."""
        domain = self.domain or sender.rpartition("@")[2]
        try:
            d = ascii_domain(domain)
        except Invalid as exc:
            raise PermanentError(f"DKIM: {exc}") from None
        signature = dkim.sign(message, self.selector, d.encode("ascii"), self.key, include_headers=DKIM_HEADERS)
        return bytes(signature) + message


def _smtp_error(exc: smtplib.SMTPResponseException, what: str) -> Exception:
    reply = exc.smtp_error
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    message = f"SMTP {what}: {exc.smtp_code} {text}"
    if exc.smtp_code in (530, 535, 534):
        return AuthError(message)
    if 400 <= exc.smtp_code < 500:
        return TransientError(message)
    return PermanentError(message)


# RFC 3463 enhanced status codes: 5.1.x (bad address: user unknown, no such domain) and 5.2.x (mailbox disabled,
# full beyond repair) are about the recipient; 5.7.x (relaying denied, policy, content) and the rest are about
# us or the message, and suppressing the address for them would clean good readers off the list.
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


def _recipient_error(code: int, resp: bytes | str, what: str) -> Exception:
    """What a refusal of one recipient (at RCPT, or of their one-recipient message) means: a hard bounce, a
    temporary refusal to try again later, or a failure that says nothing about the address."""
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    message = f"SMTP {what}: {code} {text}"
    if code == 421:
        return TransientError(message)  # the server is closing the connection: nothing to do with this reader
    if 400 <= code < 500:
        return RecipientDeferred(message)
    enhanced = _ENHANCED.match(text)
    if enhanced is not None:
        about_address = enhanced.group(1) == "5" and enhanced.group(2) in ("1", "2")
    else:
        about_address = code in (550, 551, 553) and "relay" not in text.lower()
    return RecipientBounced(message) if about_address else _smtp_error(
        smtplib.SMTPResponseException(code, resp), what)


def _envelope_address(address: str) -> tuple[str, bool]:
    """(the address as MAIL FROM / RCPT TO carry it, whether that needs SMTPUTF8): an internationalized domain
    goes in its ASCII form, which every server takes; a local part that is not ASCII only travels with SMTPUTF8."""
    local, _, domain = address.rpartition("@")
    try:
        domain = ascii_domain(domain)
    except Invalid as exc:
        raise PermanentError(f"SMTP: {address}: {exc}") from None
    return f"{local}@{domain}", not local.isascii()


class SmtpBackend(Backend):
    name = "smtp"
    max_batch_size = 1

    def __init__(self, settings: Settings, *, sandbox: bool = False) -> None:
        super().__init__(settings, sandbox=sandbox)
        self._conn: smtplib.SMTP | None = None
        self.dkim = DkimSigner(settings) if settings.dkim_private_key_file else None

    # --- connection ---------------------------------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            conn: smtplib.SMTP
            if s.smtp_security == "ssl":
                conn = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout,
                                        context=ssl.create_default_context())
            else:
                conn = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
                if s.smtp_security == "starttls":
                    conn.ehlo()
                    conn.starttls(context=ssl.create_default_context())
            conn.ehlo_or_helo_if_needed()
            if s.smtp_user:
                conn.login(s.smtp_user, s.smtp_password)
        except smtplib.SMTPAuthenticationError as exc:
            raise AuthError(f"SMTP {s.smtp_host}:{s.smtp_port} refused the login for {s.smtp_user!r}: "
                            f"{exc.smtp_code}") from None
        except smtplib.SMTPNotSupportedError as exc:
            # The server lacks what the settings require (STARTTLS, AUTH): every message would fail the same way,
            # so the send stops (rows stay pending) instead of retrying each one.
            raise AuthError(f"SMTP {s.smtp_host}:{s.smtp_port}: {exc} (smtp_security = {s.smtp_security!r}, "
                            f"smtp_user {'set' if s.smtp_user else 'empty'})") from None
        except smtplib.SMTPResponseException as exc:
            raise _smtp_error(exc, f"{s.smtp_host}:{s.smtp_port}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise Unreachable(f"SMTP {s.smtp_host}:{s.smtp_port}: cannot connect: {exc}") from None
        return conn

    def open(self) -> None:
        """Connects lazily, on the first message."""

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # --- pipeline -----------------------------------------------------------------------------------------

    def build_payload(self, content: Content, recipients: Sequence[Recipient],
                      schedule: Schedule | None) -> tuple[str, str, bytes]:
        recipient = recipients[0]
        data = render_message(self.settings, content, recipient)
        sender = content.list_row.from_email
        if self.dkim is not None:
            data = self.dkim.sign(data, sender)
        return sender, recipient.email, data

    def send_batch(self, content: Content, recipients: Sequence[Recipient], *,
                   schedule: Schedule | None = None) -> BatchResult:
        # A refusal of this one recipient is its outcome, not the batch's: the connection carries on with the next.
        try:
            return super().send_batch(content, recipients, schedule=schedule)
        except RecipientBounced as exc:
            return BatchResult(bounced={r.delivery_id: str(exc) for r in recipients})
        except RecipientDeferred as exc:
            return BatchResult(later={r.delivery_id: str(exc) for r in recipients})

    def post(self, payload: tuple[str, str, bytes]) -> str:
        sender, rcpt, data = payload
        return self._transmit(sender, [rcpt], data)

    def parse_response(self, response: str, recipients: Sequence[Recipient]) -> BatchResult:
        return BatchResult(accepted=[r.delivery_id for r in recipients], provider_message_id=response or None)

    def _transmit(self, sender: str, rcpts: list[str], data: bytes) -> str:
        sender, sender_utf8 = _envelope_address(sender)
        envelope = [_envelope_address(rcpt) for rcpt in rcpts]
        rcpts = [rcpt for rcpt, _ in envelope]
        utf8 = sender_utf8 or any(needs for _, needs in envelope)
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        if utf8 and not conn.has_extn("smtputf8"):
            who = ", ".join(a for a, needs in [(sender, sender_utf8), *envelope] if needs)
            raise PermanentError(f"SMTP {self.settings.smtp_host}: {who}: an address whose part before the @ is "
                                 "not ASCII needs SMTPUTF8, which the server does not offer")
        options = ["SMTPUTF8"] if utf8 else []
        try:
            try:
                code, resp = conn.mail(sender, options)
            except smtplib.SMTPServerDisconnected:
                # The server closed an idle reused connection: nothing was sent yet, so reconnect once.
                self._conn = conn = self._connect()
                code, resp = conn.mail(sender, options)
            if code != 250:
                conn.rset()
                raise _smtp_error(smtplib.SMTPSenderRefused(code, resp, sender), f"MAIL FROM {sender}")
            for rcpt in rcpts:
                code, resp = conn.rcpt(rcpt)
                if code not in (250, 251):
                    conn.rset()
                    raise _recipient_error(code, resp, f"RCPT TO {rcpt}")
            conn.putcmd("data")
            code, resp = conn.getreply()
            if code != 354:
                conn.rset()
                if len(rcpts) == 1:
                    raise _recipient_error(code, resp, "DATA")
                raise _smtp_error(smtplib.SMTPDataError(code, resp), "DATA")
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop()
            raise TransientError(f"SMTP {self.settings.smtp_host}: {exc}") from None
        # From here on the server has the message: a lost reply leaves it in doubt.
        try:
            body = smtplib._quote_periods(data)  # type: ignore[attr-defined]
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            conn.send(body + b".\r\n")
            code, resp = conn.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop()
            raise InDoubtError(f"SMTP {self.settings.smtp_host}: no answer after the message was sent: {exc}") \
                from None
        if code != 250:
            if len(rcpts) == 1:
                raise _recipient_error(code, resp, "end of DATA")
            raise _smtp_error(smtplib.SMTPDataError(code, resp), "end of DATA")
        return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)

    def send_message(self, message: EmailMessage) -> str:
        data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        senders = getaddresses([str(message["From"] or "")])
        sender = senders[0][1] if senders and senders[0][1] else self.settings.from_email
        if self.dkim is not None:
            data = self.dkim.sign(data, sender)
        rcpts = [addr for _, addr in getaddresses([str(v) for h in ("To", "Cc", "Bcc")
                                                   for v in message.get_all(h, [])]) if addr]
        try:
            return self._transmit(sender, rcpts, data)
        finally:
            self.close()
