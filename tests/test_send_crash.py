"""Kill -9 a running `digest send` (its whole process group), run it again: everyone gets exactly one copy,
except at most the one request (or SMTP message) in flight at the kill, which the resumed run names."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from typing import Any

import pytest

from digest.send.standin import Behaviour, StandinServer

from .send_support import (
    DAY,
    SmtpServer,
    add_articles,
    add_subscribers,
    delivery_statuses,
    sendgrid_env,
    spawn_digest,
    wait_for,
)


def _spawn_send(project: Any, *args: str) -> subprocess.Popen[bytes]:
    return spawn_digest(project, "send", "--date", DAY.isoformat(), *args)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _resume(project: Any) -> dict[str, Any]:
    result = project.run("send", "--date", DAY.isoformat(), "--json", ok=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("delay", [0, 60], ids=["assume_sent", "send_at_cancel"])
def test_kill_during_an_accepted_request_then_resume(project: Any, standin: StandinServer,
                                                     monkeypatch: pytest.MonkeyPatch, delay: int) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=3, sendgrid_send_at_delay=delay)
    add_articles(app, 3)
    add_subscribers(app, 12)
    # The third request is accepted and recorded, then its answer never comes: the worst moment to die.
    standin.state.script(Behaviour(), Behaviour(), Behaviour(hang=60))
    proc = _spawn_send(project)
    wait_for(lambda: standin.state.stats["hung_after_accept"] == 1 or proc.poll() is not None, what="third request")
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    _kill_group(proc)
    assert delivery_statuses(app)["sending"] == 3

    summary = _resume(project)
    assert summary["status"] == "sent" and summary["pending"] == 0
    in_flight = {f"reader{i}@example.com" for i in range(6, 9)}
    assert {d["email"] for d in summary["in_doubt_found"]} == in_flight
    counts = standin.state.count_by_email()
    assert counts == {f"reader{i}@example.com": 1 for i in range(12)}
    if delay:
        # The hung request was scheduled ahead under its own batch id: cancelled, then sent again.
        assert summary["requeued"] == 3 and summary["in_doubt"] == 0
        cancelled = [m.email for m in standin.state.messages(include_cancelled=True)
                     if standin.state.state_of(m) == "cancelled"]
        assert sorted(cancelled) == sorted(in_flight)
    else:
        assert summary["in_doubt"] == 3 and summary["totals"] == {"sent": 9, "in_doubt": 3}


def test_kill_at_a_random_moment_then_resume(project: Any, standin: StandinServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=2)
    add_articles(app, 3)
    add_subscribers(app, 20)
    standin.state.script(delay=0.15)
    for _ in range(2):  # two kills, two resumes at most one in-doubt request each
        proc = _spawn_send(project)
        wait_for(lambda p=proc: standin.state.stats["mail_send_requests"] >= 1 or p.poll() is not None,
                 what="first request")
        time.sleep(random.uniform(0.05, 0.6))
        if proc.poll() is None:
            _kill_group(proc)
    standin.state.script(delay=0.0)
    summary = _resume(project)
    assert summary["pending"] == 0
    doubtful = {d["email"] for d in summary["in_doubt_found"]}
    assert len(doubtful) <= 4  # one request of two recipients per kill
    counts = standin.state.count_by_email()
    for i in range(20):
        email = f"reader{i}@example.com"
        if email in doubtful:
            assert counts[email] <= 1
        else:
            assert counts[email] == 1, (email, counts[email])


def test_kill_during_an_smtp_message_then_resume(project: Any) -> None:
    with SmtpServer() as smtp:
        project.env.update({"DIGEST_BACKEND": "smtp", "DIGEST_SMTP_PORT": str(smtp.port)})
        app = project.app()
        add_articles(app, 3)
        add_subscribers(app, 8)
        smtp.sink.hang_on = 4  # the fourth message is queued by the server, its "250" never arrives
        proc = _spawn_send(project)
        wait_for(lambda: len(smtp.sink.messages) >= 4 or proc.poll() is not None, what="fourth message")
        _kill_group(proc)
        smtp.sink.hang_on = None
        summary = _resume(project)
        assert [d["email"] for d in summary["in_doubt_found"]] == ["reader3@example.com"]
        assert summary["totals"] == {"sent": 7, "in_doubt": 1}
        assert smtp.sink.count_by_rcpt() == {f"reader{i}@example.com": 1 for i in range(8)}
