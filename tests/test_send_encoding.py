"""The send's fast paths agree with the reference code they replace: links signed by `LinkSigner` are the ones
`make_token` makes (and verify), and a pre-encoded SendGrid body is the JSON of the dict the readable way builds."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from digest.audience import tokens
from digest.audience.validate import ascii_address
from digest.config import load_settings
from digest.render.edition import RenderedEdition
from digest.render.message import list_id_header
from digest.render.personalize import HeaderInjection, recipient_for, substitutions
from digest.send.backends.base import Content, Recipient, Schedule
from digest.send.backends.sendgrid import SendGridBackend
from digest.send.recipients import RecipientMaker
from digest.store.tables import MailingListRow


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.k")


def _settings(tmp_path: Path) -> Any:
    return load_settings(cwd=tmp_path, environ={"DIGEST_SECRET_KEY": "test-secret", "SENDGRID_API_KEY": "SG.k",
                                                "DIGEST_BACKEND": "sendgrid"})


@pytest.mark.parametrize("purpose", ["unsubscribe", "preferences"])
def test_link_signer_makes_the_tokens_make_token_makes(tmp_path: Path, purpose: str) -> None:
    settings = _settings(tmp_path)
    signer = tokens.LinkSigner(settings, purpose)
    for subscriber_id, email in [(1, "a@example.com"), (987654, "Ünï@exämple.org"), (2**31, "z@example.net")]:
        token = signer.sign(subscriber_id, 7, email)
        # The same second: the timestamp is part of what is signed.
        assert token in {tokens.make_token(settings, purpose, subscriber_id, 7, email=email),
                         signer.sign(subscriber_id, 7, email)}
        data = tokens.read_token(settings, purpose, token)
        assert (data.subscriber_id, data.list_id, data.email_check) == (subscriber_id, 7, tokens.email_check(email))
    # A payload itsdangerous would compress still verifies when written plain.
    assert tokens.read_token(settings, purpose, signer.sign(111111111111111, 1, "a@example.com")).subscriber_id \
        == 111111111111111
    with pytest.raises(tokens.BadToken):
        tokens.read_token(settings, "confirm", signer.sign(1, 7, "a@example.com"))


def test_recipient_maker_matches_recipient_for(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    made = RecipientMaker(settings).person(3, 42, "reader@example.com", "  Ada\nLovelace ")
    reference = recipient_for(settings, 3, 42, "reader@example.com", "Ada Lovelace")
    assert made.name == "Ada Lovelace" and made.email == reference.email
    for url, purpose in (("unsubscribe_url", "unsubscribe"), ("preferences_url", "preferences")):
        base, token = getattr(made, url).rsplit("/", 1)
        assert base == getattr(reference, url).rsplit("/", 1)[0]
        data = tokens.read_token(settings, purpose, token)
        assert (data.subscriber_id, data.list_id, data.email_check) == (42, 3, tokens.email_check("reader@example.com"))


def _content() -> Content:
    list_row = MailingListRow(id=1, name="daily", title=None, from_email="news@example.org",
                              from_name="The \"Daily\" Digest", reply_to="desk@example.org")
    rendered = RenderedEdition(subject="Tue: harbour budget — passed", preheader="", mjml="",
                               html="<p>Hello {{digest:name:html}} <a href=\"{{digest:unsubscribe_url:html}}\">x</a>",
                               text="Hello {{digest:name:text}}", trimmed=[], article_count=1, size_bytes=10,
                               key="k", edition_date=date(2024, 5, 6))
    return Content(edition_id=9, variant_id=4, list_row=list_row, rendered=rendered)


@pytest.mark.parametrize("schedule", [None, Schedule("b-1", 1_700_000_000)])
def test_the_pre_encoded_body_is_the_json_of_the_readable_payload(tmp_path: Path, schedule: Schedule | None) -> None:
    settings = _settings(tmp_path)
    backend = SendGridBackend(settings)
    content = _content()
    people = [Recipient(10 + i, recipient_for(settings, 1, 100 + i, email, name)) for i, (email, name) in
              enumerate([("a@example.com", "O'Brien & <Sons>"), ("b@example.com", None), ("zoe@exämple.org", "Zoë")])]
    body = json.loads(backend.build_payload(content, people, schedule))
    mailto = backend.mailto
    used = {"{{digest:name:html}}", "{{digest:unsubscribe_url:html}}", "{{digest:name:text}}"}
    expected = {
        "from": {"email": "news@example.org", "name": "The \"Daily\" Digest"},
        "subject": content.rendered.subject,
        "content": [{"type": "text/plain", "value": content.rendered.text},
                    {"type": "text/html", "value": content.rendered.html}],
        "headers": {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                    "List-Id": list_id_header(content.list_row, str(settings.base_url))},
        "categories": ["digest"],
        "reply_to": {"email": "desk@example.org"},
        "personalizations": [{
            # The address as SendGrid's spec types it: an internationalized domain in its IDNA form.
            "to": [{"email": ascii_address(r.email), **({"name": r.person.name} if r.person.name else {})}],
            # Only the tokens the variant uses: the name in both parts, the unsubscribe link in the HTML.
            "substitutions": {token: value for token, value in substitutions(r.person).items()
                              if token in used},
            "custom_args": {"edition_id": "9", "subscriber_id": str(r.subscriber_id),
                            "delivery_id": str(r.delivery_id)},
            "headers": {"List-Unsubscribe": f"<{r.person.unsubscribe_url}>" + (f", <{mailto}>" if mailto else "")},
        } for r in people],
    }
    if schedule is not None:
        expected.update(send_at=schedule.send_at, batch_id=schedule.batch_id)
    assert body == expected
    assert body["personalizations"][2]["to"][0]["email"] == "zoe@xn--exmple-cua.org"
    assert body["personalizations"][0]["substitutions"]["{{digest:name:html}}"] == "O&#39;Brien &amp; &lt;Sons&gt;"
    assert body["personalizations"][0]["substitutions"]["{{digest:name:text}}"] == "O'Brien & <Sons>"


def test_a_variant_without_personal_tokens_sends_no_substitutions(tmp_path: Path) -> None:
    content = _content()
    content.rendered = replace(content.rendered, html="<p>Same for everyone</p>", text="Same for everyone")
    person = recipient_for(_settings(tmp_path), 1, 100, "a@example.com", "Ada")
    body = json.loads(SendGridBackend(_settings(tmp_path)).build_payload(content, [Recipient(1, person)], None))
    assert body["personalizations"][0]["substitutions"] == {}
    assert body["personalizations"][0]["headers"]["List-Unsubscribe"].startswith(f"<{person.unsubscribe_url}>")


def test_a_control_character_in_a_header_value_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    person = recipient_for(settings, 1, 1, "a@example.com", "Eve\r\nBcc: x@example.com")
    with pytest.raises(HeaderInjection):
        SendGridBackend(settings).build_payload(_content(), [Recipient(1, person)], None)
