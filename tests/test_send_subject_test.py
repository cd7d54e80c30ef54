"""Subject tests, on both databases: a 20 % sample split evenly between subjects at the edition's send, the rest
held; once decide-after has passed the next send (or the scheduler) gives everyone else the winner; nobody gets
two subjects or two copies, also when the winner's send is killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

import pytest

from digest.feedback.events import EventType, TrackingEvent
from digest.feedback.process import apply_events
from digest.send.standin import StandinServer
from digest.send.subject_test import SubjectTestError, parse_duration

from .send_support import DAY, NOW, add_articles, add_subscribers, delivery_statuses, sendgrid_env, wait_for
from .send_support import send_on_day as _send

A, B = "Council votes tonight: what it means for you", "The harbour bridge is open again"


def _set_test(project: Any, *extra: str) -> dict[str, Any]:
    return dict(project.json("editions", "subject-test", "--date", DAY.isoformat(), "--subject", A,
                             "--subject", B, *extra))


def _subjects_by_reader(standin: StandinServer) -> dict[str, set[str]]:
    got: dict[str, set[str]] = defaultdict(set)
    for m in standin.state.messages():
        got[m.email].add(m.subject)
    return got


def _click(app: Any, standin: StandinServer, subject: str, n: int) -> None:
    """``n`` readers who got ``subject`` click (one of them twice: unique clickers count)."""
    got = [m for m in standin.state.messages() if m.subject == subject][:n]
    events = [TrackingEvent("sendgrid", f"click-{m.custom_args['delivery_id']}-{k}", EventType.CLICKED,
                            NOW + timedelta(minutes=30), email=m.email, edition_id=int(m.custom_args["edition_id"]),
                            subscriber_id=int(m.custom_args["subscriber_id"]), url="https://news.example.org/x")
              for m in got for k in range(2 if m is got[0] else 1)]
    with app.store.session() as s:
        apply_events(s, app.settings, events, now=NOW + timedelta(minutes=31))


def test_sample_then_the_winner_to_the_rest(project: Any, standin: StandinServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=50)
    add_articles(app, 3)
    add_subscribers(app, 100)
    made = _set_test(project, "--sample-percent", "20", "--decide-after", "2h")
    assert made["subjects"] == [A, B] and made["decide_after_seconds"] == 7200

    first = _send(app)
    assert first.sent == 20 and first.status == "sending", first.errors
    assert Counter(m.subject for m in standin.state.messages()) == {A: 10, B: 10}
    assert delivery_statuses(app) == {"sent": 20, "held": 80}
    _click(app, standin, B, 3)
    _click(app, standin, A, 1)

    early = _send(app, now=NOW + timedelta(hours=1))  # before decide-after: the rest still waits
    assert early.sent == 0 and delivery_statuses(app) == {"sent": 20, "held": 80}

    later = _send(app, now=NOW + timedelta(hours=2, minutes=1))
    assert later.sent == 80 and later.status == "sent", later.errors
    got = _subjects_by_reader(standin)
    assert len(got) == 100 and all(len(s) == 1 for s in got.values())  # nobody got two subjects
    assert standin.state.count_by_email() == {f"reader{i}@example.com": 1 for i in range(100)}
    assert Counter(m.subject for m in standin.state.messages()) == {A: 10, B: 90}

    shown = project.json("editions", "show", str(first.edition_id))["subject_test"]
    assert shown["winner"] == B and shown["held"] == 0 and shown["sent_the_winner"] == 80
    a, b = shown["subjects"]
    assert (a["subject"], a["sample"], a["sent"], a["clicks"], a["winner"]) == (A, 10, 10, 1, False)
    assert (b["subject"], b["sample"], b["sent"], b["clicks"], b["winner"]) == (B, 10, 10, 3, True)
    assert b["score"] == 0.3
    text = project.run("editions", "show", str(first.edition_id), env={"COLUMNS": "200"}).stdout
    assert "subject test: winner decided" in text and B in text


def test_the_scheduler_sends_the_winner_once_decide_after_has_passed(project: Any, standin: StandinServer,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from digest.schedule.runner import run_due

    app = sendgrid_env(project, standin, monkeypatch)
    add_articles(app, 3)
    add_subscribers(app, 10)
    _set_test(project, "--decide-after", "0s", "--by", "opens")
    assert _send(app).sent == 2
    assert delivery_statuses(app) == {"sent": 2, "held": 8}
    report = run_due(app, NOW + timedelta(minutes=1))
    winners = [i for i in report.items if i.action == "subject_winner"]
    assert len(winners) == 1 and winners[0].sent == 8
    assert delivery_statuses(app) == {"sent": 10}
    assert [i for i in run_due(app, NOW + timedelta(minutes=2)).items if i.action == "subject_winner"] == []
    got = _subjects_by_reader(standin)
    assert len(got) == 10 and all(len(s) == 1 for s in got.values())
    # No opens on either: a tie, which goes to the first subject.
    assert Counter(m.subject for m in standin.state.messages())[A] == 9


def test_a_kill_during_the_winners_send_then_resume_sends_nobody_twice(project: Any, standin: StandinServer,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=5)
    add_articles(app, 3)
    add_subscribers(app, 50)
    _set_test(project, "--decide-after", "0s")
    assert _send(app).sent == 10
    standin.state.script(delay=0.15)
    env = {**os.environ, **project.env}
    # The real clock is long past DAY: this run decides and sends the winner, and dies on the way.
    proc = subprocess.Popen([sys.executable, "-m", "digest", "send", "--date", DAY.isoformat()], cwd=project.root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    wait_for(lambda: standin.state.stats["mail_send_requests"] >= 4 or proc.poll() is not None, what="winner")
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    standin.state.script(delay=0.0)
    resumed = project.run("send", "--date", DAY.isoformat(), "--json", ok=False)
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads(resumed.stdout)
    assert summary["pending"] == 0 and summary["status"] == "sent"
    doubtful = {d["email"] for d in summary["in_doubt_found"]}
    assert len(doubtful) <= 5
    counts = standin.state.count_by_email()
    for i in range(50):
        email = f"reader{i}@example.com"
        assert counts[email] == 1 or (email in doubtful and counts[email] <= 1), (email, counts[email])
    assert all(len(s) == 1 for s in _subjects_by_reader(standin).values())


def test_readers_planned_while_the_test_waits_are_held_then_get_the_winner(project: Any, standin: StandinServer,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch)
    add_articles(app, 3)
    add_subscribers(app, 10)
    _set_test(project, "--decide-after", "1h")
    assert _send(app).sent == 2
    add_subscribers(app, 5, start=10)  # new readers, planned by the next send
    assert _send(app, now=NOW + timedelta(minutes=10)).sent == 0
    assert delivery_statuses(app) == {"sent": 2, "held": 13}
    assert _send(app, now=NOW + timedelta(hours=2)).sent == 13
    assert all(len(s) == 1 for s in _subjects_by_reader(standin).values())


def test_cancelling_the_edition_cancels_the_held_rest(project: Any, standin: StandinServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch)
    add_articles(app, 3)
    add_subscribers(app, 10)
    _set_test(project)
    first = _send(app)
    result = project.json("editions", "cancel", str(first.edition_id))
    assert result["cancelled"] == 8 and result["counts"] == {"sent": 2, "cancelled": 8}


def test_a_test_is_checked_and_cannot_change_once_drawn(project: Any, standin: StandinServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch)
    add_articles(app, 3)
    add_subscribers(app, 10)
    one = project.run("editions", "subject-test", "--date", DAY.isoformat(), "--subject", A, ok=False)
    assert one.exit_code == 2 and "at least two" in one.stderr
    same = project.run("editions", "subject-test", "--date", DAY.isoformat(), "--subject", A, "--subject",
                       A.upper(), ok=False)
    assert "must differ" in same.stderr
    bad = project.run("editions", "subject-test", "--date", DAY.isoformat(), "--subject", A, "--subject", B,
                      "--decide-after", "soon", ok=False)
    assert "--decide-after" in bad.stderr
    _set_test(project, "--sample-percent", "50")
    assert _set_test(project, "--sample-percent", "40")["sample_percent"] == 40  # replaced before the draw
    _send(app)
    late = project.run("editions", "subject-test", "--date", DAY.isoformat(), "--subject", A, "--subject", B,
                       ok=False)
    assert late.exit_code == 2 and "drawn its sample already" in late.stderr
    assert delivery_statuses(app) == {"sent": 4, "held": 6}


@pytest.mark.parametrize(("text", "seconds"), [("2h", 7200), ("90m", 5400), ("1h30m", 5400), ("0s", 0),
                                               ("45", 45), ("1d", 86400)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2 hours", "h", "-1h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(SubjectTestError):
        parse_duration(text)
