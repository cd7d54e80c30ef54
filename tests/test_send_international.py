"""International addresses: SendGrid gets IDN domains as IDNA and never a non-ASCII local part (which its spec's
``email`` format refuses, as the stand-in and Prism do); import and `subscribers add` refuse such a local part on
a list that sends through SendGrid."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from digest.send.standin import StandinServer, validate
from digest.store.tables import DeliveryRow

from .deliver_support import add_addresses, prism
from .send_support import NOW, add_articles, delivery_statuses, sendgrid_env
from .send_support import send_on_day as _send

IDN = "frank@bücher.example"
IDN_ASCII = "frank@xn--bcher-kva.example"
UTF8_LOCAL = "jörg@example.org"


def _body(to: str, sender: str = "news@example.org") -> dict[str, Any]:
    return {"personalizations": [{"to": [{"email": to}]}], "from": {"email": sender}, "subject": "s",
            "content": [{"type": "text/plain", "value": "x"}]}


@pytest.mark.parametrize("address", [IDN, UTF8_LOCAL, "a@b", "a..b@example.org", "a@-x.example", "a@x.example\n",
                                     "a@\u212aelvin.example"])
def test_the_standin_refuses_addresses_outside_the_specs_email_format(address: str) -> None:
    with pytest.raises(Exception) as refused:
        validate(_body(address), {}, NOW.timestamp())
    assert getattr(refused.value, "status", None) == 400
    assert refused.value.errors[0]["field"] == "personalizations.0.to.0.email"  # type: ignore[attr-defined]
    with pytest.raises(Exception) as bad_sender:
        validate(_body("a@example.org", sender=address), {}, NOW.timestamp())
    assert bad_sender.value.errors[0]["field"] == "from.email"  # type: ignore[attr-defined]


@pytest.mark.parametrize("address", [IDN_ASCII, "o'brien+news@mail.example.co.uk", "A.B@EXAMPLE.ORG"])
def test_the_standin_accepts_ascii_addresses(address: str) -> None:
    validate(_body(address), {}, NOW.timestamp())


def test_an_idn_subscriber_goes_out_in_one_request_with_the_rest(project: Any, standin: StandinServer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=100)
    add_articles(app, 3)
    ids = add_addresses(app, "ann@example.org", IDN, UTF8_LOCAL, "bo@straße.example")
    summary = _send(app)
    assert summary.requests == 1 and summary.sent == 3 and summary.failed == 1, summary.errors
    assert sorted(m.email for m in standin.state.messages()) == sorted(
        ["ann@example.org", IDN_ASCII, "bo@xn--strae-oqa.example"])
    assert delivery_statuses(app) == {"sent": 3, "failed": 1}
    with app.store.session() as s:
        failed = s.scalars(select(DeliveryRow).where(DeliveryRow.status == "failed")).one()
        # The store keeps the address as people write it; only the request carries the ASCII form.
        assert failed.subscriber_id == ids[UTF8_LOCAL] and "not ASCII" in (failed.error or "")
        assert IDN in set(s.scalars(select(DeliveryRow.email)))


def test_an_idn_subscriber_is_accepted_by_sendgrids_own_spec(sqlite_project: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """In CI: the same send through Prism serving SendGrid's OpenAPI description, in one request it accepts."""
    with prism(monkeypatch) as run:
        class _Prism:
            url = run.url

            class state:
                api_key = "SG.prism-key"

        app = sendgrid_env(sqlite_project, _Prism, monkeypatch, send_batch_size=100)
        add_articles(app, 3)
        add_addresses(app, "ann@example.org", IDN, "bo@straße.example")
        summary = _send(app)
        assert summary.sent == 3 and summary.requests == 1, summary.errors
        assert run.violations == [], run.violations
        assert [p["to"][0]["email"] for p in run.bodies[0]["personalizations"]] == [
            "ann@example.org", IDN_ASCII, "bo@xn--strae-oqa.example"]


def test_import_and_add_refuse_a_non_ascii_local_part_only_for_sendgrid(project: Any) -> None:
    csv = project.root / "people.csv"
    csv.write_text(f"email,name\nann@example.org,Ann\n{UTF8_LOCAL},Jörg\n{IDN},Frank\n", encoding="utf-8")
    sendgrid = {"DIGEST_BACKEND": "sendgrid"}
    report = project.json("subscribers", "import", str(csv), env=sendgrid)
    assert report["new"] == 2 and report["rejected"] == 1
    rejection = report["rejections"][0]
    assert rejection["line"] == 3 and rejection["reason"].startswith("email: ") and "not ASCII" in rejection["reason"]
    refused = project.run("subscribers", "add", "zoë@example.org", env=sendgrid, ok=False)
    assert refused.exit_code != 0 and "zoë@example.org" in refused.output and "not ASCII" in refused.output
    emails = {s["email"] for s in project.json("subscribers", "ls")}
    assert emails == {"ann@example.org", IDN}
    # Over SMTP the address may be fine (SMTPUTF8), so nothing refuses it there.
    assert project.json("subscribers", "import", str(csv), env={"DIGEST_BACKEND": "smtp"})["new"] == 1
    project.run("subscribers", "add", "zoë@example.org", env={"DIGEST_BACKEND": "smtp"})
    assert json.dumps(sorted(s["email"] for s in project.json("subscribers", "ls")), ensure_ascii=False) == \
        json.dumps(sorted(["ann@example.org", IDN, UTF8_LOCAL, "zoë@example.org"]), ensure_ascii=False)
