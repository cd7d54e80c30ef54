"""RFC 5322 messages: multipart/alternative (text, then HTML) with the list headers mailbox providers expect.

Sending 100,000 copies of a variant must not mean 100,000 MIME builds. ``prepare_message`` encodes everything
that is the same for every reader once: the static headers, and both bodies as quoted-printable split around the
placeholder tokens. ``PreparedMessage.render`` then writes one reader's copy by joining the pre-encoded pieces
with that reader's values (escaped for their context, then encoded) — a few string joins per message.

Joining is safe because quoted-printable allows a soft line break (``=`` CRLF) anywhere: each piece is encoded
on its own, with lines short enough that the joining ``=`` keeps every line within 76 characters.
"""

from __future__ import annotations

import base64
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy, quoprimime
from email.headerregistry import Address
from email.utils import format_datetime
from urllib.parse import quote, urlsplit

from digest.audience.validate import Invalid, ascii_domain
from digest.config import Settings
from digest.render.context import list_label
from digest.render.edition import RenderedEdition
from digest.render.personalize import (
    TOKEN_PATTERN,
    TOKENS,
    HeaderInjection,
    Recipient,
    escape_for,
    substitute,
)
from digest.store.tables import MailingListRow

CRLF = "\r\n"
_QP_WIDTH = 75  # + the joining "=" = 76, RFC 2045's limit
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SIMPLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 '-]{0,60}$")
_SIMPLE_ADDR = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}$")
_POLICY = policy.SMTP
_POLICY_UTF8 = policy.SMTPUTF8


def _check_header_value(name: str, value: str) -> str:
    if _CONTROL.search(value):
        raise HeaderInjection(f"{name}: value contains a line break or control character: {value!r}")
    return value


def fold_header(name: str, value: object, *, utf8: bool = False) -> str:
    """One header line (folded, RFC 2047-encoded where needed) ending in CRLF."""
    if isinstance(value, str):
        _check_header_value(name, value)
    pol = _POLICY_UTF8 if utf8 else _POLICY
    return str(pol.header_factory(name, value).fold(policy=pol))


def _encoded_words(text: str) -> str:
    """RFC 2047 base64 encoded-words of at most 75 characters, never splitting a character, folded."""
    words: list[bytes] = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > 45:  # 45 bytes → 60 base64 characters + 12 of "=?utf-8?b??="
            words.append(chunk)
            chunk = b""
        chunk += data
    words.append(chunk)
    return (CRLF + " ").join(f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words)


def _phrase(display_name: str) -> str:
    if _SIMPLE_NAME.match(display_name):
        return display_name
    if display_name.isascii():
        return '"' + display_name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _encoded_words(display_name)


def address_header(name: str, display_name: str | None, addr: str) -> str:
    """``Name: phrase <addr>`` without the email package's (slow, general) header machinery when it can."""
    _check_header_value(name, addr)
    _check_header_value(name, display_name or "")
    display_name = (display_name or "").strip()
    if _SIMPLE_ADDR.match(addr):
        if not display_name:
            return f"{name}: {addr}{CRLF}"
        return f"{name}: {_phrase(display_name)}{CRLF} <{addr}>{CRLF}" if len(display_name) > 40 else \
            f"{name}: {_phrase(display_name)} <{addr}>{CRLF}"
    local, _, domain = addr.rpartition("@")
    if not local or not domain or any(c in addr for c in "<>,; \t\"") or not local.isascii():
        if local.isascii() or not local:
            raise HeaderInjection(f"{name}: {addr!r} is not a usable email address")
        return fold_header(name, Address(display_name=display_name, username=local, domain=domain), utf8=True)
    try:
        domain = ascii_domain(domain)
    except Invalid as exc:
        raise HeaderInjection(f"{name}: {addr!r}: {exc}") from None
    return fold_header(name, Address(display_name=display_name, username=local, domain=domain))


def _qp(text: str) -> str:
    if not text:
        return ""
    return str(quoprimime.body_encode(text.encode("utf-8").decode("latin-1"), maxlinelen=_QP_WIDTH, eol=CRLF))


def _join_qp(pieces: list[str]) -> str:
    out: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        if out and not out[-1].endswith(CRLF):
            out.append("=" + CRLF)
        out.append(piece)
    return "".join(out)


@dataclass(frozen=True)
class _Body:
    """A body split at its tokens: pre-encoded static pieces, and (token, context) between them."""

    statics: tuple[str, ...]  # len(tokens) + 1 pre-encoded pieces
    tokens: tuple[str, ...]

    @classmethod
    def split(cls, text: str) -> _Body:
        statics: list[str] = []
        tokens: list[str] = []
        pos = 0
        for match in TOKEN_PATTERN.finditer(text):
            statics.append(_qp(text[pos:match.start()]))
            tokens.append(match.group(0))
            pos = match.end()
        statics.append(_qp(text[pos:]))
        return cls(tuple(statics), tuple(tokens))

    def render(self, values: Mapping[str, str], encoded_cache: dict[str, str]) -> str:
        pieces = [self.statics[0]]
        for token, static in zip(self.tokens, self.statics[1:]):
            encoded = encoded_cache.get(token)
            if encoded is None:
                encoded = encoded_cache[token] = _qp(values[token])
            pieces.append(encoded)
            pieces.append(static)
        return _join_qp(pieces)


def _part_head(subtype: str) -> str:
    return (f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
            f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}")


def unsubscribe_mailto(settings: Settings) -> str:
    """The ``mailto:`` List-Unsubscribe entry (without angle brackets), or "" when none is configured."""
    address = str(settings.unsubscribe_mailto or "")
    if not address:
        return ""
    _check_header_value("unsubscribe_mailto", address)
    return f"mailto:{quote(address, safe='@.+-_')}?subject=unsubscribe"


def list_id(list_row: MailingListRow, base_url: str) -> str:
    """``<name.host>`` (RFC 2919), the list's name reduced to a dot-atom."""
    slug = re.sub(r"[^a-z0-9-]+", "-", list_row.name.lower()).strip("-") or "list"
    host = (urlsplit(base_url).hostname or "localhost").lower()
    return f"{slug}.{host}"


def list_id_header(list_row: MailingListRow, base_url: str) -> str:
    """The List-Id value: the list's label and its ``<name.host>`` id (the MIME and the SendGrid messages alike)."""
    return f"{list_label(list_row)} <{list_id(list_row, base_url)}>"


@dataclass(frozen=True)
class PreparedMessage:
    """A variant's message, encoded once; ``render`` makes a reader's copy as bytes."""

    head: str  # static header lines (From, Reply-To, Subject when not personal, List-Id, ...)
    subject: str | None  # set when the subject holds tokens (rendered per reader)
    text: _Body
    html: _Body
    boundary: str
    domain: str
    list_tag: str
    unsubscribe_mailto: str
    used: frozenset[str] = frozenset()  # tokens in the subject and bodies
    language: str = "en"  # the email's (Content-Language; the greeting of a reader without a name)

    def render(self, recipient: Recipient, *, message_id: str | None = None, date: datetime | None = None,
               extra_headers: Mapping[str, str] | None = None) -> bytes:
        values = _values(recipient, self.used, self.language)
        _check_header_value("List-Unsubscribe", recipient.unsubscribe_url)
        msgid = message_id or f"<{os.urandom(16).hex()}.{self.list_tag}@{self.domain}>"
        _check_header_value("Message-ID", msgid)
        unsubscribe = f"<{recipient.unsubscribe_url}>"
        if self.unsubscribe_mailto:
            unsubscribe += f", <{self.unsubscribe_mailto}>"
        lines = [
            f"Date: {_date_header(date)}{CRLF}",
            address_header("To", recipient.name, recipient.email),
            self.head,
        ]
        if self.subject is not None:
            lines.append(fold_header("Subject", substitute(self.subject, values)))
        lines += [
            f"Message-ID: {msgid}{CRLF}",
            f"List-Unsubscribe: {unsubscribe}{CRLF}",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click" + CRLF,
        ]
        for name, value in (extra_headers or {}).items():
            lines.append(fold_header(name, value))
        encoded: dict[str, str] = {}
        lines += [self.mime_head, self.text.render(values, encoded), self.middle,
                  self.html.render(values, encoded), self.tail]
        # ASCII throughout, except an internationalized address (SMTPUTF8), which stays UTF-8.
        return "".join(lines).encode("utf-8")

    @property
    def mime_head(self) -> str:
        return (f'MIME-Version: 1.0{CRLF}Content-Type: multipart/alternative; boundary="{self.boundary}"{CRLF}'
                f"{CRLF}--{self.boundary}{CRLF}{_part_head('plain')}")

    @property
    def middle(self) -> str:
        return f"{CRLF}--{self.boundary}{CRLF}{_part_head('html')}"

    @property
    def tail(self) -> str:
        return f"{CRLF}--{self.boundary}--{CRLF}"


def _values(recipient: Recipient, used: frozenset[str], language: str) -> dict[str, str]:
    """Escaped values of only the tokens this message uses."""
    out: dict[str, str] = {}
    for context, table in TOKENS.items():
        for name, token in table.items():
            if token in used:
                out[token] = escape_for(context, recipient.value(name, language))  # type: ignore[arg-type]
    return out


_last_date: tuple[float, str] = (-1.0, "")


def _date_header(date: datetime | None) -> str:
    """RFC 5322 date; "now" is formatted once per second, not once per message."""
    global _last_date
    if date is not None:
        return format_datetime(date)
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = now.timestamp()
    if _last_date[0] != stamp:
        _last_date = (stamp, format_datetime(now))
    return _last_date[1]


def prepare_message(settings: Settings, list_row: MailingListRow, rendered: RenderedEdition) -> PreparedMessage:
    key = _prepare_key(settings, list_row, rendered)
    with _lock:
        hit = _prepared.get(key)
        if hit is not None:
            _prepared.move_to_end(key)
            return hit
    from_email = list_row.from_email
    domain = from_email.rpartition("@")[2] or "localhost"
    tag = list_id(list_row, str(settings.base_url))
    head = [address_header("From", list_row.from_name, from_email)]
    # The list's own Reply-To only: the reply_to setting is what new lists start with, not a send-time default.
    if list_row.reply_to:
        head.append(address_header("Reply-To", None, list_row.reply_to))
    personal_subject = "{{digest:" in rendered.subject
    if not personal_subject:
        head.append(fold_header("Subject", rendered.subject))
    head.append(fold_header("List-Id", list_id_header(list_row, str(settings.base_url))))
    # The language of the words (RFC 3282), for clients that offer to translate or pick a voice.
    head.append(fold_header("Content-Language", rendered.language))
    mailto = unsubscribe_mailto(settings)
    text, html = _Body.split(rendered.text), _Body.split(rendered.html)
    used = frozenset(text.tokens) | frozenset(html.tokens) | frozenset(m.group(0) for m in TOKEN_PATTERN.finditer(rendered.subject))
    prepared = PreparedMessage(
        head="".join(head),
        subject=rendered.subject if personal_subject else None,
        text=text,
        html=html,
        # "=_" can never occur in quoted-printable output, so the boundary cannot collide with a body.
        boundary=f"=_digest_{uuid.uuid4().hex[:20]}",
        domain=domain,
        list_tag=tag.split(".", 1)[0],
        unsubscribe_mailto=mailto,
        used=used,
        language=rendered.language,
    )
    with _lock:
        _prepared[key] = prepared
        while len(_prepared) > 16:
            _prepared.popitem(last=False)
    return prepared


_prepared: OrderedDict[tuple[object, ...], PreparedMessage] = OrderedDict()
_lock = threading.Lock()


def _prepare_key(settings: Settings, list_row: MailingListRow, rendered: RenderedEdition) -> tuple[object, ...]:
    return (rendered.key or id(rendered), hash((rendered.subject, rendered.html, rendered.text)), rendered.language,
            list_row.name, list_row.title, list_row.from_name, list_row.from_email, list_row.reply_to,
            settings.base_url, settings.unsubscribe_mailto)


def build_message(settings: Settings, list_row: MailingListRow, rendered: RenderedEdition, recipient: Recipient,
                  *, message_id: str | None = None, date: datetime | None = None,
                  extra_headers: Mapping[str, str] | None = None) -> bytes:
    """A complete RFC 5322 message for one reader (CRLF line endings, ready for SMTP or a .eml file)."""
    return prepare_message(settings, list_row, rendered).render(
        recipient, message_id=message_id, date=date, extra_headers=extra_headers)

