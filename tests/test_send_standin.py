"""The SendGrid stand-in enforces SendGrid's documented rules, over real HTTP on loopback."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from digest.send.standin import Behaviour, StandinServer, StandinState

KEY = "SG.test-key"


@pytest.fixture
def server(tmp_path: Any) -> Iterator[StandinServer]:
    with StandinServer(StandinState(KEY, jsonl=tmp_path / "requests.jsonl")) as s:
        yield s


def _post(server: StandinServer, path: str, body: Any, key: str | None = KEY) -> tuple[int, Any, dict[str, str]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(server.url + path, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, (json.loads(raw) if raw else None), {k.lower(): v for k, v in exc.headers.items()}


def _mail(n: int = 1, **extra: Any) -> dict[str, Any]:
    body = {
        "personalizations": [{"to": [{"email": f"r{i}@example.com"}], "custom_args": {"subscriber_id": str(i)}}
                             for i in range(n)],
        "from": {"email": "news@example.org", "name": "News"},
        "subject": "Hello",
        "content": [{"type": "text/plain", "value": "hi"}, {"type": "text/html", "value": "<p>hi</p>"}],
    }
    body.update(extra)
    return body


def _error(result: tuple[int, Any, dict[str, str]]) -> tuple[int, str, str | None]:
    status, body, _ = result
    assert set(body) == {"errors"} and set(body["errors"][0]) == {"message", "field", "help"}
    return status, body["errors"][0]["message"], body["errors"][0]["field"]


def test_accepts_a_valid_request_with_202_and_an_empty_body(server: StandinServer, tmp_path: Any) -> None:
    status, body, headers = _post(server, "/v3/mail/send", _mail(3))
    assert status == 202 and body is None and headers.get("x-message-id")
    assert [m.email for m in server.state.messages()] == ["r0@example.com", "r1@example.com", "r2@example.com"]
    line = json.loads((tmp_path / "requests.jsonl").read_text().splitlines()[0])
    assert len(line["personalizations"]) == 3


@pytest.mark.parametrize("body,status,field", [
    (_mail(1001), 400, "personalizations"),
    (_mail(0), 400, "personalizations"),
    ({k: v for k, v in _mail().items() if k != "from"}, 400, "from"),
    (_mail(personalizations=[{"to": []}]), 400, "personalizations.0.to"),
    (_mail(personalizations=[{"to": [{"email": "a@example.com"}]}, {"to": [{"email": "A@example.com"}]}]), 400,
     "personalizations.1.to"),
    (_mail(personalizations=[{"to": [{"email": f"x{i}@example.com"} for i in range(600)]},
                             {"to": [{"email": f"y{i}@example.com"} for i in range(401)]}]), 400, "personalizations"),
    ({k: v for k, v in _mail().items() if k != "subject"}, 400, "subject"),
    ({k: v for k, v in _mail().items() if k != "content"}, 400, "content"),
    (_mail(content=[{"type": "text/html", "value": "<p>x</p>"}, {"type": "text/plain", "value": "x"}]), 400,
     "content.0.type"),
    (_mail(custom_args={"edition_id": "1"}), 400, "custom_args"),
    (_mail(categories=[f"c{i}" for i in range(11)]), 400, "categories"),
    (_mail(batch_id="never-created"), 400, "batch_id"),
    (_mail(personalizations=[{"to": [{"email": "not-an-address"}]}]), 400, "personalizations.0.to.0.email"),
    (_mail(personalizations=[{"to": [{"email": "a@example.com"}], "substitutions": {"-x-": 1}}]), 400,
     "personalizations.0.substitutions"),
])
def test_refuses_what_sendgrid_refuses(server: StandinServer, body: Any, status: int, field: str) -> None:
    got_status, message, got_field = _error(_post(server, "/v3/mail/send", body))
    assert (got_status, got_field) == (status, field), message
    assert server.state.messages() == []


def test_auth_body_size_and_json(server: StandinServer) -> None:
    assert _error(_post(server, "/v3/mail/send", _mail(), key="SG.wrong"))[0] == 401
    assert _error(_post(server, "/v3/mail/send", _mail(), key=None))[0] == 401
    assert _error(_post(server, "/v3/mail/send", b"{not json"))[0] == 400
    big = _mail(content=[{"type": "text/html", "value": "x" * (31 * 1024 * 1024)}])
    assert _error(_post(server, "/v3/mail/send", big))[0] == 413


def test_scripted_429_500_and_sandbox(server: StandinServer) -> None:
    server.state.script(Behaviour(status=429, reset_in=2), Behaviour(status=500))
    status, _, headers = _post(server, "/v3/mail/send", _mail())
    assert status == 429 and int(headers["x-ratelimit-reset"]) >= time.time() + 1
    assert _post(server, "/v3/mail/send", _mail())[0] == 500
    assert _post(server, "/v3/mail/send", _mail(mail_settings={"sandbox_mode": {"enable": True}}))[0] == 200
    assert server.state.messages() == []  # sandbox: validated, not delivered
    assert _post(server, "/v3/mail/send", _mail())[0] == 202


def test_scheduled_send_is_held_until_due_and_cancellable(server: StandinServer) -> None:
    status, body, _ = _post(server, "/v3/mail/batch", b"")
    assert status == 201
    batch_id = body["batch_id"]
    later = int(time.time()) + 60
    assert _post(server, "/v3/mail/send", _mail(2, batch_id=batch_id, send_at=later))[0] == 202
    assert {server.state.state_of(m) for m in server.state.messages()} == {"held"}
    status, body, _ = _post(server, "/v3/user/scheduled_sends", {"batch_id": batch_id, "status": "cancel"})
    assert status == 201 and body == {"batch_id": batch_id, "status": "cancel"}
    assert server.state.messages() == []
    assert len(server.state.messages(include_cancelled=True)) == 2
    assert _error(_post(server, "/v3/user/scheduled_sends", {"batch_id": "nope", "status": "cancel"}))[0] == 400
    too_late = int(time.time()) + 73 * 3600
    assert _error(_post(server, "/v3/mail/send", _mail(send_at=too_late)))[2] == "send_at"


def test_control_api(server: StandinServer) -> None:
    status, _, _ = _post(server, "/_standin/script", {"behaviours": [{"status": 503}], "delay": 0.0})
    assert status == 200
    assert _post(server, "/v3/mail/send", _mail())[0] == 503
    assert _post(server, "/v3/mail/send", _mail())[0] == 202
    with urllib.request.urlopen(server.url + "/_standin/messages", timeout=5) as r:
        messages = json.load(r)
    assert [m["email"] for m in messages] == ["r0@example.com"] and messages[0]["state"] == "delivered"
    _post(server, "/_standin/reset", {})
    assert server.state.messages() == []
