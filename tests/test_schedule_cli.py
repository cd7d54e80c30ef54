"""The scheduler's commands: `digest schedule due|run|ls`, `digest lists schedule`, and real processes racing
and being stopped, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from digest.app import App
from digest.store.tables import DeliveryRow, LeaseRow, MailingListRow

from .conftest import Project
from .schedule_support import add_articles, add_reader, deliveries, make_list, outbox_counts

JOINED = datetime(2026, 3, 1, tzinfo=UTC)


def digest_process(project: Project, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "digest", *args], cwd=project.root,
                            env={**os.environ, **project.env, **(env or {})}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_due_with_now_sends_once_and_reports_json(project: Project) -> None:
    app = project.app()
    try:
        make_list(app, "daily", "Asia/Kolkata", "07:00")
        reader = add_reader(app, "daily", 1, active_since=JOINED)
        add_articles(app, datetime(2026, 3, 10, 1, 30, tzinfo=UTC))
        dry = project.json("schedule", "due", "--now", "2026-03-10T07:30:00+05:30", "--dry-run")
        assert dry["dry_run"] and [(i["action"], i["due"], i["sent"]) for i in dry["items"]] == [("send", 1, 0)]
        assert deliveries(app) == []
        out = project.json("schedule", "due", "--now", "2026-03-10T07:30:00+05:30")
        assert out["now"] == "2026-03-10T02:00:00+00:00"
        assert [(i["list"], i["date"], i["action"], i["sent"]) for i in out["items"]] == [
            ("daily", "2026-03-10", "send", 1)]
        assert project.json("schedule", "due", "--now", "2026-03-10T02:01:00Z")["items"] == []
        assert deliveries(app) == [("daily", date(2026, 3, 10), reader, "sent")]
        text = project.run("schedule", "due", "--now", "2026-03-10T02:02:00Z").output
        assert "Nothing due" in text
    finally:
        app.close()


def test_now_must_be_a_time_with_an_offset(project: Project) -> None:
    result = project.run("schedule", "due", "--now", "2026-03-10T07:00:00", ok=False)
    assert result.exit_code == 2 and "--now" in result.stderr and "offset" in result.stderr
    result = project.run("schedule", "ls", "--now", "tomorrow", ok=False)
    assert result.exit_code == 2 and "not an ISO 8601 time" in result.stderr


def test_ls_shows_next_run_and_who_falls_due_when(project: Project) -> None:
    app = project.app()
    try:
        make_list(app, "weekdays", "Europe/Paris", "07:00", schedule="0 7 * * 1-5")
        for n, tz in enumerate(["Pacific/Auckland", None, None, "America/New_York"]):
            add_reader(app, "weekdays", n, tz=tz, active_since=JOINED)
        out = project.json("schedule", "ls", "--now", "2026-03-13T12:00:00Z")  # a Friday
        assert len(out) == 1
        row = out[0]
        assert (row["list"], row["schedule"], row["timezone"], row["next_run"]) == (
            "weekdays", "0 7 * * 1-5", "Europe/Paris", "2026-03-16T06:00:00+00:00")
        assert [(g["send_at"], g["date"], g["timezone"], g["subscribers"]) for g in row["groups"]] == [
            ("2026-03-15T18:00:00+00:00", "2026-03-16", "Pacific/Auckland", 1),  # Auckland's Monday, UTC's Sunday
            ("2026-03-16T06:00:00+00:00", "2026-03-16", "Europe/Paris", 2),
            ("2026-03-16T11:00:00+00:00", "2026-03-16", "America/New_York", 1),  # Friday's 07:00 EDT has passed
        ]
        assert "weekdays" in project.run("schedule", "ls", "--now", "2026-03-13T12:00:00Z").output
    finally:
        app.close()


def test_lists_schedule_sets_cron_zone_and_approval_and_refuses_bad_input(project: Project) -> None:
    app = project.app()
    try:
        make_list(app, "briefing", "UTC", "07:00")
        out = project.json("lists", "schedule", "briefing", "30 6 * * 1-5", "--timezone", "Europe/London",
                           "--approval")
        assert out == {"list": "briefing", "schedule": "30 6 * * 1-5", "timezone": "Europe/London",
                       "send_time": "06:30", "require_approval": True}
        bad = project.run("lists", "schedule", "briefing", "0 7,19 * * *", ok=False)
        assert bad.exit_code == 2 and "several times a day" in bad.stderr
        bad = project.run("lists", "schedule", "briefing", "daily 08:00", "--timezone", "Europe/Londres", ok=False)
        assert bad.exit_code == 2 and "'Europe/Londres' is not an IANA time zone" in bad.stderr
        with app.store.session() as s:  # nothing of the refused commands was stored
            row = s.scalar(select(MailingListRow).where(MailingListRow.name == "briefing"))
            assert row is not None
            assert (row.schedule, row.send_time, row.timezone, row.require_approval) == (
                "30 6 * * 1-5", "06:30", "Europe/London", True)
        out = project.json("lists", "schedule", "briefing", "daily 08:15", "--no-approval")
        assert (out["schedule"], out["send_time"], out["require_approval"]) == ("daily 08:15", "08:15", False)
        assert project.json("lists", "schedule", "briefing") == {**out, "timezone": "Europe/London"}  # just shows
        missing = project.run("lists", "schedule", "nope", "daily 08:00", ok=False)
        assert missing.exit_code != 0 and "nope" in missing.stderr
    finally:
        app.close()


def test_two_concurrent_due_processes_deliver_each_subscriber_once(project: Project) -> None:
    app = project.app()
    try:
        readers: list[int] = []
        for name, tz in [("alpha", "Europe/Paris"), ("bravo", "Asia/Kolkata"), ("charlie", "Pacific/Auckland")]:
            make_list(app, name, tz, "07:00")
            readers += [add_reader(app, name, n, tz="Europe/Paris", active_since=JOINED) for n in range(8)]
        # Inside every list's window: each edition's cut-off is its own list's 07:00 (Auckland's is the earliest).
        add_articles(app, datetime(2026, 3, 9, 18, 0, tzinfo=UTC))
        now = "2026-03-10T07:20:00+01:00"  # 20 minutes after 07:00 in Paris, where every reader lives
        procs = [digest_process(project, "schedule", "due", "--now", now, "--json") for _ in range(2)]
        outputs = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, outputs):
            assert p.returncode == 0, err
        reports = [json.loads(out) for out, _ in outputs]
        assert sum(r["sent"] for r in reports) == len(readers)
        assert outbox_counts(project.root) == Counter({r: 1 for r in readers})
        rows = deliveries(app)
        assert sorted(sid for _, _, sid, _ in rows) == sorted(readers)
        assert {status for _, _, _, status in rows} == {"sent"}
        # And a third pass afterwards finds nothing left to do.
        assert project.json("schedule", "due", "--now", now)["items"] == []
    finally:
        app.close()


def live_list(app: App, readers: int) -> list[int]:
    """A list "live" due ten minutes ago on the real clock, with articles and ``readers`` readers; their ids."""
    real_now = datetime.now(UTC)
    send_at = real_now - timedelta(minutes=10)
    make_list(app, "live", "UTC", send_at.strftime("%H:%M"))
    ids = [add_reader(app, "live", n, active_since=real_now - timedelta(days=2)) for n in range(readers)]
    add_articles(app, send_at - timedelta(minutes=1))
    return ids


def test_sigterm_during_run_stops_cleanly_and_the_next_pass_finishes(project: Project) -> None:
    app = project.app()
    try:
        # Slowed to 5 messages a second (below) so SIGTERM lands mid-send.
        readers = live_list(app, 25)
        proc = digest_process(project, "schedule", "run", "--interval", "0.5", env={"DIGEST_SEND_RATE": "5"})
        deadline = time.monotonic() + 60
        sent = 0
        while time.monotonic() < deadline and proc.poll() is None:
            with app.store.session() as s:
                sent = len(s.scalars(select(DeliveryRow.id).where(DeliveryRow.status == "sent")).all())
            if sent >= 3:
                break
            time.sleep(0.1)
        assert proc.poll() is None and sent >= 3, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stop requested" in err and "left pending for the next pass" in err and "scheduler stopped" in err
        with app.store.session() as s:
            assert s.scalars(select(LeaseRow)).all() == []  # the scheduler's and the send's leases released
            statuses = Counter(s.scalars(select(DeliveryRow.status)))
        assert 0 < statuses["sent"] < len(readers), statuses  # stopped mid-way, nothing lost or doubled
        assert set(statuses) <= {"sent", "pending"}

        # The next pass (cron's next minute) resumes the rest, and nobody gets two.
        project.run("schedule", "due")
        assert outbox_counts(project.root) == Counter({r: 1 for r in readers})
        assert {status for *_, status in deliveries(app)} == {"sent"}
    finally:
        app.close()


def test_sigterm_while_idle_exits_zero(project: Project) -> None:
    proc = digest_process(project, "schedule", "run", "--interval", "30")
    assert proc.stderr is not None
    first = proc.stderr.readline()  # logged once the signal handlers are in place
    assert "scheduler started" in first, first
    time.sleep(0.5)  # let the first (empty) pass run, so the signal lands while it sleeps
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "scheduler stopped" in err


def test_sigkill_of_the_run_process_group_then_an_immediate_pass_delivers_the_rest_once(project: Project) -> None:
    app = project.app()
    try:
        readers = live_list(app, 20)
        proc = subprocess.Popen([sys.executable, "-m", "digest", "schedule", "run", "--interval", "0.5"],
                                cwd=project.root, env={**os.environ, **project.env, "DIGEST_SEND_RATE": "5"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if sum(outbox_counts(project.root).values()) >= 4:
                break
            time.sleep(0.05)
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGKILL)  # no clean-up at all: leases and a `sending` row are left behind
        proc.wait(timeout=10)
        with app.store.session() as s:
            assert s.scalars(select(LeaseRow)).all() != []

        # The next pass does not wait for the dead scheduler's leases to expire, and sends each remaining reader once.
        out = project.json("schedule", "due")
        assert out["busy"] == [] and out["errors"] == []
        counts = outbox_counts(project.root)
        statuses = Counter(status for *_, status in deliveries(app))
        assert set(statuses) <= {"sent", "in_doubt"} and statuses["in_doubt"] <= 1, statuses
        doubtful = {sid for _, _, sid, status in deliveries(app) if status == "in_doubt"}
        for reader in readers:  # exactly once, apart from the one message in flight at the kill (at most once)
            assert counts[reader] <= 1 if reader in doubtful else counts[reader] == 1, (reader, counts[reader])
        with app.store.session() as s:
            assert s.scalars(select(LeaseRow)).all() == []
    finally:
        app.close()


def test_ls_does_not_count_subscribers_who_already_have_their_next_edition(project: Project) -> None:
    app = project.app()
    try:
        make_list(app, "daily", "UTC", "07:00")
        sent_by_hand = add_reader(app, "daily", 1, active_since=JOINED)
        add_articles(app, datetime(2026, 3, 11, 6, 0, tzinfo=UTC))
        before = project.json("schedule", "ls", "--now", "2026-03-10T12:00:00Z")[0]["groups"]
        assert [(g["date"], g["subscribers"]) for g in before] == [("2026-03-11", 1)]
        assert project.json("send", "--list", "daily", "--date", "2026-03-11")["sent"] == 1
        add_reader(app, "daily", 2, active_since=JOINED)
        after = project.json("schedule", "ls", "--now", "2026-03-10T12:00:00Z")[0]["groups"]
        assert [(g["date"], g["subscribers"]) for g in after] == [("2026-03-11", 1)]  # only the newcomer
        assert deliveries(app) == [("daily", date(2026, 3, 11), sent_by_hand, "sent")]
    finally:
        app.close()
