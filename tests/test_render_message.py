"""The .eml: a complete multipart/alternative message with list headers, built fast per recipient."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.render.edition import render_selection
from digest.render.message import build_message, prepare_message
from digest.render.personalize import HeaderInjection, personalize
from tests.render_helpers import EDITION_DATE, EVIL_TITLE, list_row, recipient, selection, settings


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body((kind,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def test_eml_has_every_header_and_both_parts(tmp_path: Path) -> None:
    s = settings(tmp_path, base_url="https://news.example.org", unsubscribe_mailto="leave@ledger.example.org")
    rendered = render_selection(s, list_row(), EDITION_DATE, selection(3))
    reader = recipient()
    when = datetime(2031, 3, 4, 6, 0, tzinfo=UTC)
    raw = build_message(s, list_row(), rendered, reader, message_id="<m1@ledger.example.org>", date=when)
    msg = parse(raw)
    assert msg["From"] == "The Springfield Ledger <news@ledger.example.org>"
    assert msg["To"] == "Pat Reader <pat@readers.example.org>"
    assert msg["Reply-To"] == "desk@ledger.example.org"
    assert msg["Subject"] == rendered.subject
    assert msg["Message-ID"] == "<m1@ledger.example.org>"
    assert msg["Date"].datetime == when
    assert msg["List-Id"] == "The Springfield Ledger <daily.news.example.org>"
    assert msg["List-Unsubscribe"] == (f"<{reader.unsubscribe_url}>, "
                                       "<mailto:leave@ledger.example.org?subject=unsubscribe>")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    _subject, html, text = personalize(rendered, reader)
    assert body(msg, "html") == html
    assert body(msg, "plain") == text
    assert msg.defects == [] and all(not p.defects for p in msg.walk())


def test_eml_lines_are_crlf_and_within_limits(tmp_path: Path) -> None:
    s = settings(tmp_path)
    rendered = render_selection(s, list_row(), EDITION_DATE, selection(5))
    raw = build_message(s, list_row(), rendered, recipient(name="Jöhn Ümlaut-Reader " * 4))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    assert all(len(line) <= 76 for line in rest.split(b"\r\n")), "quoted-printable lines must be <= 76"
    assert raw.isascii()
    # RFC 2047 decoding (whitespace between encoded-words is dropped; Python's address parser keeps it).
    raw_to = email.message_from_bytes(raw)["To"]
    assert str(make_header(decode_header(raw_to))) == ("Jöhn Ümlaut-Reader " * 4).strip() + " <pat@readers.example.org>"


def test_evil_title_and_name_stay_inert_in_headers(tmp_path: Path) -> None:
    s = settings(tmp_path, subject_template="{{ top_headline }}")
    rendered = render_selection(s, list_row(), EDITION_DATE, selection(1, title=EVIL_TITLE))
    raw = build_message(s, list_row(), rendered, recipient(name='<b>"x"</b>'))
    msg = parse(raw)
    assert msg["Subject"] == rendered.subject == EVIL_TITLE
    assert msg["To"].addresses[0].display_name == '<b>"x"</b>'
    assert msg["To"].addresses[0].addr_spec == "pat@readers.example.org"
    assert "&lt;b&gt;&#34;x&#34;&lt;/b&gt;" in body(msg, "html")
    assert 'Hello <b>"x"</b>,' in body(msg, "plain")
    with pytest.raises(HeaderInjection):
        build_message(s, list_row(), rendered, recipient(name="Pat\r\nBcc: everyone@example.org"))
    with pytest.raises(HeaderInjection):
        build_message(s, list_row(), rendered, recipient(email="pat@example.org\r\nBcc: x@example.org"))
    with pytest.raises(HeaderInjection):
        build_message(s, list_row(), rendered, recipient(unsubscribe_url="https://x/\r\nBcc: y"))


def test_personal_subject_and_extra_headers(tmp_path: Path) -> None:
    s = settings(tmp_path, subject_template="{{ recipient.name }}, your {{ date_label }} briefing")
    rendered = render_selection(s, list_row(), EDITION_DATE, selection(1))
    raw = build_message(s, list_row(), rendered, recipient(name="Zoë"), extra_headers={"X-Digest-Delivery": "d-9"})
    msg = parse(raw)
    assert msg["Subject"] == "Zoë, your Tue 4 Mar briefing"
    assert msg["X-Digest-Delivery"] == "d-9"
    with pytest.raises(HeaderInjection):
        build_message(s, list_row(), rendered, recipient(name="Zoë\nBcc: a@example.org"))


def test_prepared_message_is_reused_and_matches_a_full_build(tmp_path: Path) -> None:
    s = settings(tmp_path)
    rendered = render_selection(s, list_row(reply_to=None), EDITION_DATE, selection(4))
    prepared = prepare_message(s, list_row(reply_to=None), rendered)
    assert prepare_message(s, list_row(reply_to=None), rendered) is prepared
    ids = set()
    for n in range(50):
        reader = recipient(email=f"reader{n}@example.org", name=f"Reader {n}",
                           unsubscribe_url=f"https://news.example.org/unsubscribe/t{n}")
        msg = parse(prepared.render(reader))
        ids.add(msg["Message-ID"])
        assert msg["To"] == f"Reader {n} <reader{n}@example.org>"
        assert msg["Reply-To"] is None
        assert f"https://news.example.org/unsubscribe/t{n}" in body(msg, "html")
        assert body(msg, "plain") == personalize(rendered, reader)[2]
    assert len(ids) == 50 and all(i.endswith("@ledger.example.org>") for i in ids)


def test_reply_to_is_the_lists_own_and_not_the_reply_to_setting(tmp_path: Path) -> None:
    """The reply_to setting is copied into new lists; a list without a Reply-To sends without one."""
    s = settings(tmp_path, reply_to="fallback@ledger.example.org")
    rendered = render_selection(s, list_row(reply_to=None), EDITION_DATE, selection(2))
    assert parse(build_message(s, list_row(reply_to=None), rendered, recipient()))["Reply-To"] is None
    own = parse(build_message(s, list_row(), rendered, recipient()))
    assert own["Reply-To"] == "desk@ledger.example.org"
