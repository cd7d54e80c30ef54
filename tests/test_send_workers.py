"""Several workers on one edition (PostgreSQL): SKIP LOCKED batches shared between processes, a worker killed
with SIGKILL mid-way and the edition resumed by `digest send` (everyone exactly once), a 429 seen by one worker
pausing the others, and SQLite refusing workers with a clear message."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from digest.app import App
from digest.audience.lists import ensure_list
from digest.send.standin import Behaviour, StandinServer
from digest.store.tables import SendBatchRow, SubscriberRow

from .conftest import Project, _Postgres, require
from .send_support import (
    DAY,
    NOW,
    add_articles,
    add_subscribers,
    delivery_statuses,
    run_at_terminal,
    send_on_day,
    sendgrid_env,
    spawn_digest,
    wait_for,
)


@pytest.fixture
def pg_project(tmp_path: Path, _postgres: _Postgres | None) -> Iterator[Project]:
    require(_postgres is not None, "PostgreSQL (set DIGEST_TEST_POSTGRES_URL)")
    assert _postgres is not None
    name = _postgres.fresh()
    root = tmp_path / "newsroom"
    root.mkdir()
    yield Project(root, _postgres.url_for(name))
    _postgres.drop(name)


def _bulk_subscribers(app: App, n: int) -> None:
    with app.store.session() as s:
        list_id = ensure_list(s, app.settings).id
        s.execute(insert(SubscriberRow), [
            {"list_id": list_id, "email": f"reader{i}@example.com", "email_key": f"reader{i}@example.com",
             "name": f"Reader {i}", "status": "active", "topics": [], "paused": False, "soft_bounces": 0,
             "created_at": NOW, "active_since": NOW} for i in range(n)])


def _planned(app: App) -> None:
    """The edition planned (rows and batches written, status sending) and nothing sent: what workers join."""
    stop = threading.Event()
    stop.set()
    summary = send_on_day(app, stop=stop)
    assert summary.sent == 0 and summary.status == "sending"


def _spawn_worker(project: Project) -> subprocess.Popen[bytes]:
    return spawn_digest(project, "worker", "--json")


def _done_by(app: App) -> dict[int, int]:
    """Done batches by the pid of the worker that sent them."""
    with app.store.session() as s:
        holders = list(s.scalars(select(SendBatchRow.holder).where(SendBatchRow.status == "done")))
    out: dict[int, int] = defaultdict(int)
    for holder in holders:
        if holder:
            out[int(holder.split(":")[1])] += 1
    return dict(out)


def test_three_workers_one_killed_then_digest_send_resumes(pg_project: Project, standin: StandinServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    n = 20_000
    # send_at ahead: the request in flight at the kill is cancelled and sent again, so nobody is lost either.
    app = sendgrid_env(pg_project, standin, monkeypatch, sendgrid_send_at_delay=60)
    add_articles(app, 3)
    _bulk_subscribers(app, n)
    _planned(app)
    standin.state.script(delay=0.3)  # slow answers: the batches spread over the three workers
    workers = [_spawn_worker(pg_project) for _ in range(3)]
    victim = workers[1]
    try:
        # Mid-way: the victim has sent a batch of its own and the edition is far from done.
        wait_for(lambda: _done_by(app).get(victim.pid, 0) >= 1 or victim.poll() is not None, timeout=120,
                 what="a batch sent by the second worker")
        assert victim.poll() is None, victim.stderr.read().decode() if victim.stderr else ""
        assert standin.state.stats["mail_send_requests_accepted"] < math.ceil(n / 1000) - 2
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)  # reaped: a dead process, not a zombie that still answers kill(pid, 0)
        survivors = []
        for proc in (workers[0], workers[2]):
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err.decode()
            survivors.append(json.loads(out))
    finally:
        for proc in workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    standin.state.script(delay=0.0)

    resumed = pg_project.json("send", "--date", DAY.isoformat())
    assert resumed["status"] == "sent" and resumed["pending"] == 0
    assert delivery_statuses(app) == {"sent": n}
    # Each subscriber exactly once: the killed worker's request in flight, if any, was cancelled and resent.
    counts = standin.state.count_by_email()
    assert counts == {f"reader{i}@example.com": 1 for i in range(n)}
    requeued = resumed["requeued"] + sum(w["requeued"] for w in survivors)
    assert requeued <= 1000  # at most the one request in flight per kill
    # Requests accepted and then cancelled (their send_at not reached) were sent again. A kill between the claim
    # and the POST leaves rows `sending` whose request never arrived: requeued, and sent once, with no extra.
    cancelled = sum(1 for b in standin.state.batches.values() if b["used"] and b["status"] == "cancel")
    assert cancelled <= 1
    assert standin.state.stats["mail_send_requests_accepted"] == math.ceil(n / 1000) + cancelled
    # Every worker did some of the work.
    done = _done_by(app)
    assert done.get(victim.pid, 0) >= 1
    assert all(w["batches"] >= 1 and w["sent"] >= 1000 for w in survivors)
    assert sum(w["sent"] for w in survivors) + resumed["sent"] + 1000 * done[victim.pid] >= n


def test_a_429_seen_by_one_worker_pauses_the_others_until_its_reset(pg_project: Project, standin: StandinServer,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    n = 6000
    app = sendgrid_env(pg_project, standin, monkeypatch)
    add_articles(app, 3)
    _bulk_subscribers(app, n)
    _planned(app)
    standin.state.script(delay=0.2)
    workers = [_spawn_worker(pg_project) for _ in range(2)]
    try:
        wait_for(lambda: standin.state.stats["mail_send_requests_accepted"] >= 1, what="a first request")
        standin.state.script(Behaviour(status=429, reset_in=3.0))  # the next request, whoever makes it
        wait_for(lambda: bool(standin.state.resets), what="the 429")
        results = [json.loads(p.communicate(timeout=120)[0]) for p in workers]
    finally:
        for proc in workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    limited_at, reset = standin.state.resets[0]
    assert sum(r["rate_limited"] for r in results) == 1 and sum(r["sent"] for r in results) == n
    first_at: dict[int, float] = {}
    for m in standin.state.messages():
        first_at.setdefault(m.request_no, m.received_at)
    during = [no for no, at in first_at.items() if limited_at < at < reset]
    # Only a request the other worker already had in flight when the 429 came may land before the reset;
    # without the shared pause the other worker would go on sending every 0.2 s.
    assert len(during) <= 1, (during, first_at, reset)
    assert standin.state.count_by_email() == {f"reader{i}@example.com": 1 for i in range(n)}


def test_workers_are_refused_on_sqlite(sqlite_project: Project) -> None:
    app = sqlite_project.app()
    add_articles(app, 3)
    refused = sqlite_project.run("send", "--date", DAY.isoformat(), "--workers", "2", ok=False)
    assert refused.exit_code == 2 and "needs PostgreSQL" in refused.output and "one process" in refused.output
    worker = sqlite_project.run("worker", ok=False)
    assert worker.exit_code == 2 and "needs PostgreSQL" in worker.output
    assert delivery_statuses(app) == {}


def test_send_with_workers_adds_up_what_every_worker_did(pg_project: Project, standin: StandinServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    project = pg_project
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=50)
    add_articles(app, 3)
    add_subscribers(app, 600)
    standin.state.script(delay=0.1)
    result = project.run("send", "--date", DAY.isoformat(), "--workers", "3", "--json")
    assert "sending" not in result.stderr  # not a terminal: no bar, as with one process
    summary = json.loads(result.stdout)
    assert summary["workers"] == 3 and summary["sent"] == 600 and summary["status"] == "sent"
    assert summary["batches"] == math.ceil(600 / 50) and summary["requests"] == math.ceil(600 / 50)
    assert standin.state.count_by_email() == {f"reader{i}@example.com": 1 for i in range(600)}


def test_a_worker_records_a_550_as_a_bounce_and_tries_a_451_again(pg_project: Project) -> None:
    """Issue 15 on issue 14's workers: `digest worker` delivers through the same module as `digest send`, so a
    reader the SMTP server refuses for good is a hard bounce (suppressed, audited), and one refused for now is
    tried again once the rest went out."""
    from digest.audience.lifecycle import is_suppressed
    from digest.store.tables import AuditRow, DeliveryRow

    from .send_support import SmtpServer
    from .test_send_bounces import RefusingSink

    sink = RefusingSink(rcpt={"reader1@example.com": ["550 5.1.1 <reader1@example.com>: User unknown"],
                              "reader2@example.com": ["451 4.7.1 Greylisted, try again later"]})
    with SmtpServer(sink) as smtp:
        pg_project.env.update({"DIGEST_BACKEND": "smtp", "DIGEST_SMTP_PORT": str(smtp.port),
                               "DIGEST_SEND_BACKOFF_SECONDS": "0.01", "DIGEST_SEND_MAX_RETRIES": "2"})
        app = pg_project.app()
        add_articles(app, 3)
        add_subscribers(app, 4)
        _planned(app)
        proc = _spawn_worker(pg_project)
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert proc.returncode == 1, err.decode()  # a failed delivery: the worker says so by its exit code
    done = json.loads(out)
    assert (done["sent"], done["failed"], done["bounced"]) == (3, 1, 1), done["errors"]
    assert done["retries"] >= 1
    # The 451 reader was tried again after the others, and got it once.
    assert sink.tried == ["reader0@example.com", "reader1@example.com", "reader2@example.com",
                          "reader3@example.com", "reader2@example.com"]
    assert sink.count_by_rcpt() == {f"reader{i}@example.com": 1 for i in (0, 2, 3)}
    assert delivery_statuses(app) == {"sent": 3, "failed": 1}
    with app.store.session() as s:
        failed = s.scalars(select(DeliveryRow).where(DeliveryRow.status == "failed")).one()
        assert failed.email == "reader1@example.com" and "550 5.1.1" in (failed.error or "")
        assert is_suppressed(s, "reader1@example.com")
        reader1 = s.scalars(select(SubscriberRow).where(SubscriberRow.email == "reader1@example.com")).one()
        assert reader1.status == "bounced"
        audits = s.scalars(select(AuditRow).where(AuditRow.email_key == "reader1@example.com",
                                                  AuditRow.new_status == "bounced")).all()
        assert [a.actor for a in audits] == ["send:smtp"]
    # Nothing left waiting: every send batch done (the retry's batch included), the edition settled.
    with app.store.session() as s:
        assert set(s.scalars(select(SendBatchRow.status))) == {"done"}
    stats = pg_project.json("stats", "--edition", str(_edition_id(app)))["editions"][0]
    assert stats["bounced"] == 1 and stats["sent"] == 3


def _edition_id(app: App) -> int:
    from digest.store.tables import EditionRow

    with app.store.session() as s:
        return int(s.scalars(select(EditionRow.id)).one())


def test_a_subject_test_sent_by_several_workers_gives_nobody_two_subjects(pg_project: Project,
                                                                          standin: StandinServer,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15's subject test on issue 14's workers: the sample is drawn in the planning step, before any batch
    opens, so no worker sends a reader the base subject or a held reader anything; the winner's send with
    workers then reaches everyone else once, with the winner's subject."""
    from collections import Counter

    from .test_send_subject_test import A, B, _subjects_by_reader

    project = pg_project
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=50)
    add_articles(app, 3)
    add_subscribers(app, 600)
    project.json("editions", "subject-test", "--date", DAY.isoformat(), "--subject", A, "--subject", B,
                 "--sample-percent", "20", "--decide-after", "0s")
    standin.state.script(delay=0.05)
    first = json.loads(project.run("send", "--date", DAY.isoformat(), "--workers", "2", "--json").stdout)
    assert first["workers"] == 2 and first["sent"] == 120 and first["status"] == "sending", first["errors"]
    assert Counter(m.subject for m in standin.state.messages()) == {A: 60, B: 60}
    assert delivery_statuses(app) == {"sent": 120, "held": 480}

    # decide-after has passed (0 s): this send decides (a tie, no clicks: the first subject) and sends the rest.
    rest = json.loads(project.run("send", "--date", DAY.isoformat(), "--workers", "2", "--json").stdout)
    assert rest["sent"] == 480 and rest["status"] == "sent", rest["errors"]
    got = _subjects_by_reader(standin)
    assert len(got) == 600 and all(len(s) == 1 for s in got.values())
    assert standin.state.count_by_email() == {f"reader{i}@example.com": 1 for i in range(600)}
    assert Counter(m.subject for m in standin.state.messages()) == {A: 540, B: 60}


@pytest.mark.parametrize("flags", [(), ("--no-progress",)], ids=["bar", "no_progress"])
def test_send_with_workers_draws_every_workers_progress_at_a_terminal(pg_project: Project, standin: StandinServer,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     flags: tuple[str, ...]) -> None:
    """At a terminal, `digest send --workers 2` draws one bar from the edition's rows in the store, so it counts
    the other worker's messages too and ends at the whole edition; `--no-progress` draws none; the summary is
    the same either way."""
    app = sendgrid_env(pg_project, standin, monkeypatch, send_batch_size=50)
    add_articles(app, 3)
    add_subscribers(app, 600)
    standin.state.script(delay=0.2)  # a send of a few seconds: several polls, so a rate
    status, out, terminal = run_at_terminal(pg_project, "send", "--date", DAY.isoformat(), "--workers", "2", *flags)
    assert status == 0, out + terminal
    assert "delivered by 2 worker processes (12 batch(es))" in out and "this run: sent 600, failed 0" in out
    assert standin.state.count_by_email() == {f"reader{i}@example.com": 1 for i in range(600)}
    if flags:
        assert "sending" not in terminal and "/600" not in terminal, terminal
        return
    final = [line for line in terminal.splitlines() if "sending" in line][-1]
    assert "600/600" in final and "sent 600 · failed 0 · skipped 0 · in doubt 0" in final, terminal
    assert "msg/s" in final, final
