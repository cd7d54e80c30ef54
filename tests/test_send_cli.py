"""The send part's commands: send, editions ls/show/cancel, articles retract, dev sendgrid; and, in CI, a send
through Stoplight Prism serving SendGrid's official OpenAPI description."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from digest.send.dispatch import send_edition
from digest.send.standin import StandinServer

from .conftest import REPO, SHARED, Project, require
from .send_support import DAY, NOW, add_articles, add_subscribers, free_port, sendgrid_env, wait_for


def test_send_and_editions_commands(project: Any) -> None:
    app = project.app()
    add_articles(app, 4)
    add_subscribers(app, 3)
    add_subscribers(app, 2, start=10, topics=["sports"])
    summary = project.json("send", "--date", DAY.isoformat())
    assert summary["sent"] == 5 and summary["status"] == "sent" and summary["totals"] == {"sent": 5}
    editions = project.json("editions", "ls")
    assert [(e["id"], e["status"], e["deliveries"]) for e in editions] == [(summary["edition_id"], "sent", 5)]
    shown = project.json("editions", "show", str(summary["edition_id"]))
    assert sum(v["subscribers"] for v in shown["variants"]) == 5
    assert shown["articles"] and all(a["delivered"] for a in shown["articles"] if a["title"])
    assert shown["in_doubt"] == [] and shown["counts"] == {"sent": 5}
    text = project.run("editions", "show", str(summary["edition_id"])).stdout
    assert "variants" in text and "sent 5" in text
    again = project.run("send", "--date", DAY.isoformat())
    assert "sent 0" in again.stdout
    missing = project.run("editions", "show", "999", ok=False)
    assert missing.exit_code == 1 and "no edition with id 999" in missing.output


def test_dry_run_and_cancel(project: Any) -> None:
    app = project.app()
    add_articles(app, 3)
    add_subscribers(app, 4)
    dry = project.json("send", "--date", DAY.isoformat(), "--dry-run")
    assert dry["recipients"] == 4 and dry["dry_run"] and dry["subjects"]
    assert project.json("editions", "show", str(dry["edition_id"]))["counts"] == {}
    stop = threading.Event()
    stop.set()
    planned = send_edition(app, date=DAY, now=NOW, progress=False, stop=stop)
    assert planned.pending == 4
    cancelled = project.json("editions", "cancel", str(planned.edition_id))
    assert cancelled["cancelled"] == 4 and cancelled["counts"] == {"cancelled": 4}
    refused = project.run("send", "--date", DAY.isoformat(), ok=False)
    assert refused.exit_code == 1 and "was cancelled" in refused.output
    refused = project.run("editions", "approve", str(planned.edition_id), ok=False)
    assert refused.exit_code == 1 and "is cancelled: there is nothing left to approve" in refused.output


def test_retract_moves_pending_deliveries_to_a_variant_without_the_article(project: Any) -> None:
    app = project.app()
    add_articles(app, 5)
    add_subscribers(app, 4)
    stop = threading.Event()
    stop.set()
    planned = send_edition(app, date=DAY, now=NOW, progress=False, stop=stop)  # rows written, none sent
    before = project.json("editions", "show", str(planned.edition_id))
    victim = before["variants"][0]["article_ids"][0]
    title = next(a["title"] for a in before["articles"] if a["id"] == victim)
    result = project.json("articles", "retract", victim)
    assert result["editions"][0]["deliveries_moved"] == 4
    after = project.json("editions", "show", str(planned.edition_id))
    live = [v for v in after["variants"] if v["subscribers"]]
    assert live and all(victim not in v["article_ids"] for v in live)
    project.run("send", "--date", DAY.isoformat())
    files = list((project.root / "outbox").glob("*.eml"))
    assert len(files) == 4
    for path in files:
        html = message_from_bytes(path.read_bytes(), policy=policy.default).get_body(("html",)).get_content()
        assert title not in html
    shown = project.json("editions", "show", str(planned.edition_id))
    assert not any(a["id"] == victim and a["delivered"] for a in shown["articles"])


def test_sandbox_validates_with_sendgrid_and_stores_nothing(project: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with StandinServer() as standin:
        app = sendgrid_env(project, standin, monkeypatch)
        add_articles(app, 3)
        add_subscribers(app, 3)
        summary = project.json("send", "--date", DAY.isoformat(), "--sandbox")
        assert summary["sandbox"] and summary["requests"] == 1 and summary["sent"] == 3
        assert standin.state.stats["sandbox_requests"] == 1 and standin.state.messages() == []
        assert project.json("editions", "show", str(summary["edition_id"]))["counts"] == {}
    refused = project.run("send", "--date", DAY.isoformat(), "--via", "smtp", "--sandbox", ok=False)
    assert refused.exit_code == 2 and "--sandbox is not supported by the smtp backend" in refused.output


def test_dev_sendgrid_serves_the_stand_in(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SENDGRID_API_KEY": "SG.dev-key"}
    proc = subprocess.Popen([sys.executable, "-m", "digest", "dev", "sendgrid", "--port", str(port),
                             "--jsonl", str(tmp_path / "log.jsonl")], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def up() -> bool:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_standin/stats", timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(up, what="digest dev sendgrid")
        body = json.dumps({"personalizations": [{"to": [{"email": "a@example.com"}]}],
                           "from": {"email": "news@example.org"}, "subject": "s",
                           "content": [{"type": "text/plain", "value": "x"}]}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v3/mail/send", data=body, method="POST",
                                     headers={"Authorization": "Bearer SG.dev-key",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 202
        assert json.loads((tmp_path / "log.jsonl").read_text())["personalizations"][0]["to"][0]["email"] \
            == "a@example.com"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("delay", [0, 60], ids=["immediate", "send_at_batch"])
def test_send_through_prism_with_sendgrids_official_spec(sqlite_project: Any, monkeypatch: pytest.MonkeyPatch,
                                                         delay: int) -> None:
    """In CI, a send through Prism serving SendGrid's own OpenAPI description: any request that drifts from the
    real API (a field, a type: e.g. custom_args at the top level) comes back with an `sl-violations` header. With a
    send_at delay (the default), each request also creates a batch id (POST /v3/mail/batch) and carries it."""
    spec = SHARED / "sendgrid" / "tsg_mail_v3.json"
    require(spec.is_file(), "../shared/sendgrid/tsg_mail_v3.json (SendGrid's OpenAPI description)")
    prism = REPO / "node_modules" / ".bin" / "prism"
    require(prism.exists() and shutil.which("node") is not None, "Stoplight Prism (npm ci)")
    port = free_port()
    proc = subprocess.Popen([str(prism), "mock", str(spec), "-p", str(port), "-h", "127.0.0.1", "--errors"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    violations: list[str] = []
    try:
        def up() -> bool:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v3/mail/send", timeout=1)
            except urllib.error.HTTPError:
                return True
            except OSError:
                return False
            return True

        import urllib.error

        wait_for(up, timeout=60, what="prism")
        # Prism reports contract violations in a response header, which the SendGrid client does not surface:
        # record it from the raw responses.
        from python_http_client import client as http_client

        original = http_client.Client._make_request

        calls: list[tuple[str, str]] = []

        def spy(self: Any, opener: Any, request: Any, timeout: Any = None) -> Any:
            calls.append((request.get_method(), request.full_url.split(str(port), 1)[1]))
            if request.data and request.full_url.endswith("/v3/mail/send"):
                body = json.loads(request.data)
                # Per-recipient ids only inside personalizations: the spec types a top-level custom_args as a string.
                assert "custom_args" not in body and all("custom_args" in p for p in body["personalizations"])
                assert ("send_at" in body and "batch_id" in body) == bool(delay)
            response = original(self, opener, request, timeout=timeout)
            header = response.headers.get("sl-violations")
            if header:
                violations.append(header)
            return response

        monkeypatch.setattr(http_client.Client, "_make_request", spy)
        real_urlopen = urllib.request.urlopen

        def spy_urlopen(request: Any, *args: Any, **kwargs: Any) -> Any:
            # Mail Send bodies encoded ahead (sendgrid_body) go out through urllib itself.
            if not isinstance(request, urllib.request.Request):
                return real_urlopen(request, *args, **kwargs)
            calls.append((request.get_method(), request.full_url.split(str(port), 1)[1]))
            body = json.loads(request.data or b"{}")
            assert "custom_args" not in body and all("custom_args" in p for p in body["personalizations"])
            assert ("send_at" in body and "batch_id" in body) == bool(delay)
            response = real_urlopen(request, *args, **kwargs)
            header = response.headers.get("sl-violations")
            if header:
                violations.append(header)
            return response

        monkeypatch.setattr(urllib.request, "urlopen", spy_urlopen)
        project = sqlite_project

        class _Prism:
            url = f"http://127.0.0.1:{port}"

            class state:
                api_key = "SG.prism-key"

        app = sendgrid_env(project, _Prism, monkeypatch, send_batch_size=3, sendgrid_send_at_delay=delay)
        add_articles(app, 3)
        add_subscribers(app, 5)
        summary = send_edition(app, date=DAY, now=NOW, progress=False)
        assert summary.sent == 5 and summary.requests == 2, summary.errors
        assert violations == [], violations
        sends = [("POST", "/v3/mail/send")] * 2
        assert calls == ([("POST", "/v3/mail/batch"), sends[0]] * 2 if delay else sends), calls
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=10)
    time.sleep(0)


def test_a_list_requiring_approval_sends_only_an_approved_edition(project: Any) -> None:
    app = project.app()
    add_articles(app, 3)
    add_subscribers(app, 2)
    project.run("lists", "schedule", "daily", "--approval")
    refused = project.run("send", "--date", DAY.isoformat(), ok=False)
    assert refused.exit_code == 1 and "requires approval" in refused.output
    edition_id = int(refused.output.split("`digest editions approve ")[1].split("`")[0])
    dry = project.json("send", "--date", DAY.isoformat(), "--dry-run")  # judging it first is allowed
    assert dry["recipients"] == 2 and project.json("editions", "show", str(edition_id))["counts"] == {}
    project.run("editions", "approve", str(edition_id), "--by", "desk")
    assert project.json("send", "--date", DAY.isoformat())["sent"] == 2


def test_retry_failed_refuses_to_go_with_a_rehearsal(sqlite_project: Project) -> None:
    result = sqlite_project.run("send", "--retry-failed", "--dry-run", ok=False)
    assert result.exit_code == 2 and "--retry-failed" in result.output
